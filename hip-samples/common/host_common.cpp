#include "host_common.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <limits>
#include <thread>

namespace gmem_samples {

ResultLine& ResultLine::add(const std::string& key, const std::string& value) {
  // Spaces would split a field when the line is parsed back.
  std::string cleaned = value;
  std::replace(cleaned.begin(), cleaned.end(), ' ', '_');
  fields_.emplace_back(key, cleaned);
  return *this;
}

ResultLine& ResultLine::add(const std::string& key, double value, int decimals) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(decimals) << value;
  return add(key, out.str());
}

ResultLine& ResultLine::add(const std::string& key, std::uint64_t value) {
  return add(key, std::to_string(value));
}

std::string ResultLine::format(const std::string& status) const {
  std::string line = "RESULT sample=" + sample_ + " status=" + status;
  for (const auto& [key, value] : fields_) line += " " + key + "=" + value;
  return line;
}

const char* status_for_exit_code(int exit_code) {
  switch (exit_code) {
    case kExitVerified: return "PASS";
    case kExitMismatch: return "FAIL";
    case kExitCannotRun: return "SKIP";
    default: return "ERROR";
  }
}

double gigabytes_per_second(std::uint64_t bytes, double seconds) {
  if (seconds <= 0.0) return 0.0;
  return static_cast<double>(bytes) / seconds / 1e9;
}

std::string format_gib(std::uint64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << to_gib(bytes) << " GiB";
  return out.str();
}

std::uint64_t parse_byte_size(const std::string& text) {
  std::size_t consumed = 0;
  double number = 0.0;
  try {
    number = std::stod(text, &consumed);
  } catch (const std::exception&) {
    throw UsageError("not a size: '" + text + "' (examples: 4096, 64K, 512M, 1.5G)");
  }
  std::string suffix = text.substr(consumed);
  std::transform(suffix.begin(), suffix.end(), suffix.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (suffix.size() > 1 && (suffix.substr(1) == "IB" || suffix.substr(1) == "B"))
    suffix = suffix.substr(0, 1);
  double multiplier = 1.0;
  if (suffix.empty() || suffix == "B") multiplier = 1.0;
  else if (suffix == "K") multiplier = 1024.0;
  else if (suffix == "M") multiplier = 1024.0 * 1024.0;
  else if (suffix == "G") multiplier = kBytesPerGiB;
  else if (suffix == "T") multiplier = kBytesPerGiB * 1024.0;
  else throw UsageError("unknown size suffix in '" + text + "' (use K, M, G or T)");
  const double bytes = number * multiplier;
  if (!(bytes > 0.0) || bytes >= 1.8e19)
    throw UsageError("size out of range: '" + text + "'");
  return static_cast<std::uint64_t>(bytes);
}

double parse_positive_double(const std::string& text, const std::string& what) {
  std::size_t consumed = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &consumed);
  } catch (const std::exception&) {
    consumed = 0;
  }
  if (consumed == 0 || consumed != text.size() || !(value > 0.0) || !std::isfinite(value))
    throw UsageError(what + " must be a positive number, got '" + text + "'");
  return value;
}

std::uint64_t parse_unsigned(const std::string& text, const std::string& what) {
  if (text.empty() || !std::all_of(text.begin(), text.end(),
                                   [](unsigned char c) { return std::isdigit(c) != 0; }))
    throw UsageError(what + " must be a non-negative integer, got '" + text + "'");
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    throw UsageError(what + " is too large: '" + text + "'");
  }
}

namespace {
std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, ',')) parts.push_back(part);
  return parts;
}
}  // namespace

std::vector<double> parse_double_list(const std::string& text, const std::string& what) {
  std::vector<double> values;
  for (const auto& part : split_commas(text)) values.push_back(parse_positive_double(part, what));
  if (values.empty()) throw UsageError(what + " must list at least one value");
  return values;
}

std::vector<int> parse_int_list(const std::string& text, const std::string& what) {
  std::vector<int> values;
  for (const auto& part : split_commas(text)) {
    const std::uint64_t value = parse_unsigned(part, what);
    if (value > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
      throw UsageError(what + " value too large: '" + part + "'");
    values.push_back(static_cast<int>(value));
  }
  if (values.empty()) throw UsageError(what + " must list at least one value");
  return values;
}

CommandLine::CommandLine(int argc, const char* const* argv,
                         const std::vector<std::string>& known_options,
                         const std::vector<std::string>& known_flags) {
  auto is_in = [](const std::vector<std::string>& list, const std::string& name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") throw HelpRequested();
    if (arg.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (is_in(known_flags, name)) {
      if (inline_value) throw UsageError("--" + name + " takes no value");
      values_[name] = "";
    } else if (is_in(known_options, name)) {
      if (inline_value) {
        values_[name] = *inline_value;
      } else if (i + 1 < argc) {
        values_[name] = argv[++i];
      } else {
        throw UsageError("--" + name + " needs a value");
      }
    } else {
      throw UsageError("unknown option '--" + name + "'");
    }
  }
}

bool CommandLine::has(const std::string& name) const { return values_.count(name) != 0; }

std::optional<std::string> CommandLine::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string CommandLine::value_or(const std::string& name, const std::string& fallback) const {
  return value(name).value_or(fallback);
}

XnackMode xnack_mode_from_arch_name(const std::string& arch_name) {
  std::istringstream in(arch_name);
  std::string feature;
  while (std::getline(in, feature, ':')) {
    if (feature == "xnack+") return XnackMode::kEnabled;
    if (feature == "xnack-") return XnackMode::kDisabled;
  }
  return XnackMode::kNotReported;
}

MallocAccess assess_malloc_access(bool pageable_memory_access, const std::string& arch_name) {
  const XnackMode mode = xnack_mode_from_arch_name(arch_name);
  if (pageable_memory_access) {
    switch (mode) {
      case XnackMode::kEnabled: return {true, ""};
      case XnackMode::kDisabled:
        return {true, "HIP reports pageable memory access although the architecture says "
                      "xnack- (as on APUs that share the CPU's page tables)"};
      case XnackMode::kNotReported:
        return {true, "HIP reports pageable memory access; the architecture name does not "
                      "list xnack"};
    }
  }
  switch (mode) {
    case XnackMode::kEnabled:
      return {false, "XNACK is on, but HIP reports no pageable memory access: the kernel "
                     "does not mirror this process (amdgpu needs HMM and CONFIG_HSA_AMD_SVM, "
                     "and amdgpu.noretry=0)"};
    case XnackMode::kDisabled:
      return {false, "XNACK is off in this process; on a stock ROCm kernel run with "
                     "HSA_XNACK=1, and check the kernel has HMM/SVM (amdgpu.noretry=0)"};
    case XnackMode::kNotReported: break;
  }
  return {false, "HIP reports no pageable memory access and this GPU has no XNACK "
                 "(page-fault retry); malloc'd memory needs an MI200/MI300-class GPU"};
}

std::string base_arch_name(const std::string& arch_name) {
  return arch_name.substr(0, arch_name.find(':'));
}

std::optional<std::uint64_t> parse_meminfo_available(const std::string& meminfo_text) {
  std::istringstream in(meminfo_text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    std::uint64_t kib = 0;
    std::string unit;
    if (!(fields >> kib >> unit) || unit != "kB") return std::nullopt;
    return kib * 1024;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> host_available_bytes() {
  std::ifstream file("/proc/meminfo");
  if (!file) return std::nullopt;
  std::stringstream text;
  text << file.rdbuf();
  return parse_meminfo_available(text.str());
}

void parallel_for(std::size_t count,
                  const std::function<void(std::size_t begin, std::size_t end)>& body) {
  const std::size_t threads =
      std::min<std::size_t>(std::max(1u, std::thread::hardware_concurrency()),
                            std::max<std::size_t>(1, count / 65536));
  if (threads <= 1) {
    body(0, count);
    return;
  }
  std::vector<std::thread> workers;
  const std::size_t chunk = (count + threads - 1) / threads;
  for (std::size_t t = 0; t < threads; ++t) {
    const std::size_t begin = t * chunk;
    const std::size_t end = std::min(count, begin + chunk);
    if (begin >= end) break;
    workers.emplace_back(body, begin, end);
  }
  for (auto& worker : workers) worker.join();
}

std::uint64_t checksum_range(const std::uint32_t* data, std::uint64_t first_index,
                             std::uint64_t count) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < count; ++i) sum += checksum_term(first_index + i, data[i]);
  return sum;
}

std::uint64_t checksum_parallel(const std::uint32_t* data, std::uint64_t count) {
  std::atomic<std::uint64_t> total{0};
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    total += checksum_range(data + begin, begin, end - begin);
  });
  return total.load();
}

std::uint64_t checksum_expected_parallel(std::uint64_t count,
                                         const std::function<std::uint32_t(std::uint64_t)>& expected) {
  std::atomic<std::uint64_t> total{0};
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    std::uint64_t sum = 0;
    for (std::size_t i = begin; i < end; ++i) sum += checksum_term(i, expected(i));
    total += sum;
  });
  return total.load();
}

std::optional<std::uint64_t> first_mismatch(const std::uint32_t* data, std::uint64_t count,
                                            const std::function<std::uint32_t(std::uint64_t)>& expected) {
  std::atomic<std::uint64_t> lowest{std::numeric_limits<std::uint64_t>::max()};
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      if (data[i] != expected(i)) {
        std::uint64_t seen = lowest.load();
        while (i < seen && !lowest.compare_exchange_weak(seen, i)) {
        }
        return;
      }
    }
  });
  if (lowest.load() == std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
  return lowest.load();
}

void SideBySide::set(const std::string& row, const std::string& column, const std::string& text) {
  if (std::find(rows_.begin(), rows_.end(), row) == rows_.end()) rows_.push_back(row);
  if (std::find(columns_.begin(), columns_.end(), column) == columns_.end())
    columns_.push_back(column);
  cells_[{row, column}] = text;
}

std::string SideBySide::format() const {
  std::vector<std::size_t> widths{row_heading_.size()};
  for (const auto& row : rows_) widths[0] = std::max(widths[0], row.size());
  for (const auto& column : columns_) {
    std::size_t width = column.size();
    for (const auto& row : rows_) {
      const auto cell = cells_.find({row, column});
      width = std::max(width, cell == cells_.end() ? std::size_t{1} : cell->second.size());
    }
    widths.push_back(width);
  }
  std::ostringstream out;
  const auto line = [&](const std::string& first, const std::function<std::string(std::size_t)>& cell) {
    out << "  " << first << std::string(widths[0] - first.size(), ' ');
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      const std::string text = cell(c);
      out << "  " << std::string(widths[c + 1] - text.size(), ' ') << text;
    }
    out << "\n";
  };
  line(row_heading_, [&](std::size_t c) { return columns_[c]; });
  for (const auto& row : rows_)
    line(row, [&](std::size_t c) {
      const auto cell = cells_.find({row, columns_[c]});
      return cell == cells_.end() ? std::string("-") : cell->second;
    });
  return out.str();
}

}  // namespace gmem_samples
