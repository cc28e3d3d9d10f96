#include "gmem_advise_cli.h"

#include <cerrno>
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>
#include <variant>

#include <CLI/CLI.hpp>

#include "gmem/hmadvise_abi.h"
#include "session.h"
#include "topology.h"
#include "translate.h"

namespace gmem::tools {
namespace {

using thunk::Backend;
using thunk::Topology;
using thunk::TopologyNode;

std::string hex(std::uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%" PRIx64, value);
  return text;
}

// Accepts decimal, 0x-hex, and for sizes a K/M/G suffix (powers of 1024).
bool parse_number(const std::string& text, bool allow_suffix, std::uint64_t* value) {
  if (text.empty() || text[0] == '-') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long parsed = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || end == text.c_str()) return false;
  std::string suffix(end);
  unsigned shift = 0;
  if (allow_suffix && suffix.size() == 1) {
    switch (suffix[0]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: return false;
    }
  } else if (!suffix.empty()) {
    return false;
  }
  if (shift != 0 && parsed > (~0ULL >> shift)) return false;
  *value = static_cast<std::uint64_t>(parsed) << shift;
  return true;
}

std::string gmem_node_text(const TopologyNode& node) {
  if (!node.gmem_node_id) return "-";
  return std::to_string(*node.gmem_node_id) +
         (node.gmem_node_id_assumed ? " (assumed)" : "");
}

int list_nodes(const Topology& topology, std::ostream& out) {
  out << std::left << std::setw(10) << "KFD node" << std::setw(7) << "type"
      << std::setw(12) << "gpu_id" << std::setw(14) << "GMEM node"
      << "name\n";
  for (const TopologyNode& node : topology.nodes()) {
    out << std::setw(10) << node.node_id;
    if (!node.accessible) {
      out << "not accessible to this process\n";
      continue;
    }
    out << std::setw(7) << (node.is_gpu() ? "GPU" : "CPU") << std::setw(12)
        << node.gpu_id << std::setw(14) << gmem_node_text(node)
        << node.name << "\n";
  }
  return 0;
}

void print_plan(const thunk::Plan& plan, const Topology& topology,
                std::ostream& out) {
  if (const auto* call = std::get_if<thunk::SyscallCall>(&plan)) {
    out << "  hmadvise(hnid=" << call->hnid << ", start=" << hex(call->start)
        << ", len=" << hex(call->len) << ", behavior="
        << thunk::syscall_behavior_name(call->behavior) << ")\n"
        << "  = syscall(" << thunk::syscall_number_text() << ", " << call->hnid << ", "
        << hex(call->start) << ", " << hex(call->len) << ", "
        << hex(static_cast<std::uint32_t>(call->behavior)) << ")\n";
  } else if (const auto* call = std::get_if<thunk::MadviseCall>(&plan)) {
    out << "  madvise(" << hex(call->start) << ", " << hex(call->len)
        << ", MADV_DONTNEED)\n"
        << "  no KFD attribute: KFD drops the range through its MMU notifier\n";
  } else if (const auto* call = std::get_if<thunk::SvmSetAttrCall>(&plan)) {
    out << "  hsaKmtSVMSetAttr(start=" << hex(call->start)
        << ", size=" << hex(call->size)
        << ", nattr=" << call->hsakmt_attributes.size() << ")\n";
    for (std::size_t i = 0; i < call->hsakmt_attributes.size(); ++i) {
      const HSA_SVM_ATTRIBUTE& attribute = call->hsakmt_attributes[i];
      out << "    attrs[" << i << "] = {HSA_SVM_ATTR_"
          << thunk::svm_attribute_name(attribute.type) << " (" << attribute.type
          << "), " << hex(attribute.value) << "}\n";
    }
    out << "  -> AMDKFD_IOC_SVM op=SET_ATTR start_addr=" << hex(call->start)
        << " size=" << hex(call->size)
        << " nattr=" << call->ioctl_attributes.size() << "\n";
    for (std::size_t i = 0; i < call->ioctl_attributes.size(); ++i) {
      const kfd_ioctl_svm_attribute& attribute = call->ioctl_attributes[i];
      std::string meaning;
      switch (attribute.type) {
        case KFD_IOCTL_SVM_ATTR_SET_FLAGS:
        case KFD_IOCTL_SVM_ATTR_CLR_FLAGS:
          meaning = attribute.value == KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY
                        ? "KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY"
                        : "flags";
          break;
        default:
          if (attribute.value == KFD_IOCTL_SVM_LOCATION_UNDEFINED) {
            meaning = "KFD_IOCTL_SVM_LOCATION_UNDEFINED";
          } else if (attribute.value == KFD_IOCTL_SVM_LOCATION_SYSMEM) {
            meaning = "KFD_IOCTL_SVM_LOCATION_SYSMEM";
          } else if (const TopologyNode* node = topology.find_by_gpu_id(attribute.value)) {
            meaning = "gpu_id of KFD node " + std::to_string(node->node_id);
          }
      }
      out << "    attrs[" << i << "] = {KFD_IOCTL_SVM_ATTR_"
          << thunk::svm_attribute_name(attribute.type) << " (" << attribute.type
          << "), " << hex(attribute.value) << (meaning.empty() ? "" : " " + meaning)
          << "}\n";
    }
  } else if (const auto* call = std::get_if<thunk::RocrSetAttributesCall>(&plan)) {
    out << "  hsa_amd_svm_attributes_set(ptr=" << hex(call->start)
        << ", size=" << hex(call->size)
        << ", attribute_count=" << call->attributes.size() << ")\n";
    for (std::size_t i = 0; i < call->attributes.size(); ++i) {
      const thunk::RocrAttribute& attribute = call->attributes[i];
      out << "    attribute_list[" << i << "] = {"
          << thunk::rocr_attribute_name(attribute.attribute) << " ("
          << hex(attribute.attribute) << "), ";
      if (!attribute.names_agent)
        out << attribute.value;
      else if (attribute.node_id == HSA_GMEM_NO_NODE)
        out << "null agent (no location)";
      else
        out << "agent of KFD node " << attribute.node_id;
      out << "}\n";
    }
  } else if (const auto* call = std::get_if<thunk::RocrPrefetchCall>(&plan)) {
    out << "  hsa_amd_svm_prefetch_async(ptr=" << hex(call->start)
        << ", size=" << hex(call->size) << ", agent of KFD node "
        << call->node_id << ", 0 dependencies, completion signal)\n"
        << "  then waits for the completion signal\n";
  } else {
    out << "  no equivalent (status HSAKMT_STATUS_NOT_IMPLEMENTED): "
        << std::get<thunk::NoEquivalent>(plan).reason << "\n";
  }
}

// Ids of a node that no topology gave: recognisable values that the
// printed text turns back into names.
constexpr std::uint32_t kPlaceholderGpuId = 0xfeed0000;
constexpr std::int32_t kPlaceholderGmemNode = 987650000;

Topology placeholder_topology_for(std::uint32_t node_id) {
  std::vector<TopologyNode> nodes;
  const std::uint32_t count =
      node_id == HSA_GMEM_NO_NODE ? 2 : std::max<std::uint32_t>(node_id + 1, 2);
  for (std::uint32_t id = 0; id < count && id < 4096; ++id) {
    TopologyNode node;
    node.node_id = id;
    if (id != 0) node.gpu_id = kPlaceholderGpuId + id;
    node.gmem_node_id = kPlaceholderGmemNode + static_cast<std::int32_t>(id);
    nodes.push_back(node);
  }
  return Topology(std::move(nodes));
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::string with_placeholder_names(std::string text, std::uint32_t node_id) {
  // The request names one node; a DONTNEED also reaches the CPU node 0.
  for (std::uint32_t id : {node_id, 0u}) {
    if (id == HSA_GMEM_NO_NODE) continue;
    const std::string node = "KFD node " + std::to_string(id);
    text = replace_all(text, hex(kPlaceholderGpuId + id) + " gpu_id of " + node,
                       "<gpu_id of " + node + ">");
    text = replace_all(text, std::to_string(kPlaceholderGmemNode + static_cast<std::int32_t>(id)),
                       "<GMEM node id of " + node + ">");
  }
  return text;
}

}  // namespace

int run_gmem_advise(int argc, const char* const* argv, std::ostream& out,
                    std::ostream& err, const CliEnvironment& environment) {
  CLI::App app{
      "gmem-advise: KFD/GMEM node ids, the active hmadvise backend, and what a "
      "hint becomes in the kernel."};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the version and exit");
  std::string sysfs_root = "/sys";
  app.add_option("--sysfs-root", sysfs_root,
                 "sysfs mount to read the KFD topology from")
      ->capture_default_str();

  CLI::App* nodes = app.add_subcommand(
      "nodes", "List KFD nodes with their gpu_id and GMEM node id");
  CLI::App* backend = app.add_subcommand(
      "backend", "Probe the kernel and show which backend hsaKmtGmemOpen picks");

  CLI::App* explain = app.add_subcommand(
      "explain", "Print the exact kernel call a hint translates to (nothing is "
                 "executed)");
  std::string hint_text, node_text, start_text = "0x7f0000000000",
                                    size_text = "2M", backend_text = "all";
  explain->add_option("--hint", hint_text,
                      "prefetch, dontneed, preferred-loc, unset-preferred-loc, "
                      "accessed-by, unset-accessed-by, no-access, "
                      "unset-no-access, read-mostly, unset-read-mostly, pin, "
                      "unpin")
      ->required();
  explain->add_option("--node", node_text, "KFD node id, or \"none\" (DONTNEED only)")
      ->required();
  explain->add_option("--start", start_text, "start address (page aligned)")
      ->capture_default_str();
  explain->add_option("--size", size_text, "length in bytes, K/M/G suffix allowed")
      ->capture_default_str();
  explain->add_option("--backend", backend_text,
                      "syscall, rocr, kfd, all, or active (probes the kernel)")
      ->check(CLI::IsMember({"syscall", "rocr", "kfd", "all", "both", "active"}))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error, out, err) == 0 ? 0 : 2;
  }

  if (show_version) {
    out << "gmem-advise " << HSA_GMEM_VERSION_MAJOR << "." << HSA_GMEM_VERSION_MINOR
        << "." << HSA_GMEM_VERSION_PATCH << "\n";
    return 0;
  }
  if (!nodes->parsed() && !backend->parsed() && !explain->parsed()) {
    err << app.help();
    return 2;
  }

  // explain's own arguments are usage errors whatever the machine has.
  thunk::AdviceRequest request{};
  if (explain->parsed()) {
    HSA_GMEM_HINT hint{};
    if (!thunk::hint_from_name(hint_text, &hint)) {
      err << "gmem-advise: unknown hint \"" << hint_text << "\"\n";
      return 2;
    }
    request.hint = hint;
    std::uint64_t number = 0;
    if (node_text == "none") {
      request.node_id = HSA_GMEM_NO_NODE;
    } else if (parse_number(node_text, false, &number) && number < HSA_GMEM_NO_NODE) {
      request.node_id = static_cast<std::uint32_t>(number);
    } else {
      err << "gmem-advise: --node \"" << node_text << "\" is not a node id\n";
      return 2;
    }
    if (!parse_number(start_text, false, &number)) {
      err << "gmem-advise: --start \"" << start_text << "\" is not an address\n";
      return 2;
    }
    request.start = static_cast<std::uintptr_t>(number);
    if (!parse_number(size_text, true, &request.size)) {
      err << "gmem-advise: --size \"" << size_text << "\" is not a size\n";
      return 2;
    }
  }

  Topology topology;
  thunk::Status status = Topology::load(sysfs_root, &topology);
  bool placeholder_topology = false;
  if (!status.ok()) {
    if (!explain->parsed() || backend_text == "active") {
      err << "gmem-advise: " << status.message << "\n";
      return 1;
    }
    // explain needs no machine: a stand-in topology shows the shape of
    // each call, with the node's ids left as names.
    out << "no KFD topology (" << status.message << "): KFD node 0 is taken as "
           "the CPU node, other nodes as GPUs, their ids shown by name\n";
    topology = placeholder_topology_for(request.node_id);
    placeholder_topology = true;
  }

  if (nodes->parsed()) return list_nodes(topology, out);

  thunk::SessionOptions options;
  options.sysfs_root = sysfs_root;
  options.page_size = environment.page_size;
  options.hsa_runtime = environment.hsa_runtime;
  status = thunk::parse_backend_request(environment.backend_request, &options.request);
  if (!status.ok()) {
    err << "gmem-advise: " << status.message << "\n";
    return 1;
  }

  if (backend->parsed()) {
    out << thunk::kBackendEnvironmentVariable << "="
        << (environment.backend_request ? environment.backend_request : "")
        << (environment.backend_request ? "" : "(unset: auto)") << "\n";
    thunk::SelectionReport report;
    std::unique_ptr<thunk::Session> session;
    status = thunk::Session::open(environment.kernel, options, &session, &report);
    for (const std::string& step : report.steps) out << step << "\n";
    if (!status.ok()) {
      err << "gmem-advise: no backend (" << thunk::status_name(status.code)
          << "): " << status.message << "\n";
      return 1;
    }
    out << "active backend: " << thunk::backend_name(session->backend()) << "\n";
    return 0;
  }

  std::vector<Backend> backends;
  std::unique_ptr<thunk::Session> session;
  if (backend_text == "active") {
    status = thunk::Session::open(environment.kernel, options, &session, nullptr);
    if (!status.ok()) {
      err << "gmem-advise: no backend (" << thunk::status_name(status.code)
          << "): " << status.message << "\n";
      return 1;
    }
    backends.push_back(session->backend());
  } else {
    const bool every = backend_text == "all" || backend_text == "both";
    if (every || backend_text == "syscall") backends.push_back(Backend::syscall);
    if (every || backend_text == "rocr") backends.push_back(Backend::rocr_svm);
    if (every || backend_text == "kfd") backends.push_back(Backend::kfd_svm);
  }

  out << thunk::hint_name(request.hint) << " on "
      << (request.node_id == HSA_GMEM_NO_NODE
              ? std::string("no node")
              : "KFD node " + std::to_string(request.node_id))
      << ", start " << hex(request.start) << ", size " << hex(request.size)
      << "\n";
  int exit_status = 0;
  for (Backend each : backends) {
    out << "backend " << thunk::backend_name(each) << ":\n";
    thunk::Plan plan;
    status = thunk::plan_advice(request, topology, each, environment.page_size, &plan);
    if (!status.ok()) {
      out << "  refused before any kernel call (" << thunk::status_name(status.code)
          << "): " << status.message << "\n";
      exit_status = 1;
      continue;
    }
    std::ostringstream text;
    print_plan(plan, topology, text);
    out << (placeholder_topology ? with_placeholder_names(text.str(), request.node_id)
                                 : text.str());
  }
  return exit_status;
}

}  // namespace gmem::tools
