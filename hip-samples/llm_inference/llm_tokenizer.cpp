#include "llm_tokenizer.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

namespace gmem_samples::llm {
namespace {

template <typename T>
bool read_value(std::ifstream& in, T* value) {
  return static_cast<bool>(in.read(reinterpret_cast<char*>(value), sizeof(T)));
}

// Length of the UTF-8 character that starts with `lead` (1 for a stray
// continuation byte, so malformed text still advances).
std::size_t utf8_length(unsigned char lead) {
  if (lead >= 0xf0 && lead < 0xf8) return 4;
  if (lead >= 0xe0) return lead < 0xf0 ? 3 : 1;
  if (lead >= 0xc0) return 2;
  return 1;
}

}  // namespace

Tokenizer::Tokenizer(std::vector<std::string> pieces, std::vector<float> scores)
    : pieces_(std::move(pieces)), scores_(std::move(scores)) {
  if (pieces_.size() != scores_.size())
    throw TokenizerError("tokenizer: pieces and scores differ in number");
  for (std::size_t i = 0; i < pieces_.size(); ++i)
    ids_.emplace(pieces_[i], static_cast<int>(i));  // the first of duplicates wins
}

Tokenizer Tokenizer::load(const std::string& path, int vocab_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError("cannot open tokenizer " + path);
  std::int32_t max_length = 0;
  if (!read_value(in, &max_length) || max_length <= 0)
    throw TokenizerError(path + ": missing or bad max_token_length");
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < vocab_size; ++i) {
    float score = 0;
    std::int32_t length = 0;
    if (!read_value(in, &score) || !read_value(in, &length))
      throw TokenizerError(path + ": truncated at token " + std::to_string(i) + " of " +
                           std::to_string(vocab_size));
    if (length < 0 || length > max_length)
      throw TokenizerError(path + ": token " + std::to_string(i) + " has length " +
                           std::to_string(length) + " (max_token_length " +
                           std::to_string(max_length) + ")");
    std::string piece(static_cast<std::size_t>(length), '\0');
    if (length > 0 && !in.read(piece.data(), length))
      throw TokenizerError(path + ": truncated in token " + std::to_string(i));
    pieces.push_back(std::move(piece));
    scores.push_back(score);
  }
  if (in.peek() != std::char_traits<char>::eof())
    throw TokenizerError(path + ": bytes after the last of " + std::to_string(vocab_size) +
                         " tokens: the tokenizer is not for this model");
  return Tokenizer(std::move(pieces), std::move(scores));
}

int Tokenizer::lookup(const std::string& piece) const {
  auto found = ids_.find(piece);
  return found == ids_.end() ? -1 : found->second;
}

std::vector<int> Tokenizer::encode(const std::string& text, bool bos, bool eos) const {
  std::vector<int> tokens;
  if (bos) tokens.push_back(kBosToken);
  std::vector<int> pieces;
  if (!text.empty()) {
    const int space = lookup(" ");
    if (space >= 0) pieces.push_back(space);
  }
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length =
        std::min(utf8_length(static_cast<unsigned char>(text[at])), text.size() - at);
    const std::string character = text.substr(at, length);
    const int id = lookup(character);
    if (id >= 0) {
      pieces.push_back(id);
    } else {
      for (unsigned char byte : character) pieces.push_back(kFirstByteToken + byte);
    }
    at += length;
  }
  // Merge the best-scoring pair until none joins into a known piece.
  for (;;) {
    float best_score = -std::numeric_limits<float>::infinity();
    int best_id = -1;
    std::size_t best_at = 0;
    for (std::size_t i = 0; i + 1 < pieces.size(); ++i) {
      const int id = lookup(piece(pieces[i]) + piece(pieces[i + 1]));
      if (id >= 0 && scores_[static_cast<std::size_t>(id)] > best_score) {
        best_score = scores_[static_cast<std::size_t>(id)];
        best_id = id;
        best_at = i;
      }
    }
    if (best_id < 0) break;
    pieces[best_at] = best_id;
    pieces.erase(pieces.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
  }
  tokens.insert(tokens.end(), pieces.begin(), pieces.end());
  if (eos) tokens.push_back(kEosToken);
  return tokens;
}

std::string Tokenizer::decode(int previous, int token) const {
  std::string text = piece(token);
  if (previous == kBosToken && !text.empty() && text[0] == ' ') text.erase(0, 1);
  unsigned byte = 0;
  char rest = 0;
  if (text.size() == 6 && std::sscanf(text.c_str(), "<0x%02X>%c", &byte, &rest) == 1)
    return std::string(1, static_cast<char>(byte));
  return text;
}

std::string Tokenizer::decode_all(const std::vector<int>& tokens) const {
  std::string text;
  int previous = kBosToken;
  for (int token : tokens) {
    if (token == kBosToken || token == kEosToken) {
      previous = token;
      continue;
    }
    text += decode(previous, token);
    previous = token;
  }
  return text;
}

void write_tokenizer_file(const std::string& path, const std::vector<std::string>& pieces,
                          const std::vector<float>& scores) {
  std::ofstream out(path, std::ios::binary);
  std::int32_t max_length = 1;
  for (const std::string& piece : pieces)
    max_length = std::max<std::int32_t>(max_length, static_cast<std::int32_t>(piece.size()));
  out.write(reinterpret_cast<const char*>(&max_length), sizeof(max_length));
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const std::int32_t length = static_cast<std::int32_t>(pieces[i].size());
    out.write(reinterpret_cast<const char*>(&scores[i]), sizeof(float));
    out.write(reinterpret_cast<const char*>(&length), sizeof(length));
    out.write(pieces[i].data(), length);
  }
  if (!out) throw TokenizerError("cannot write " + path);
}

}  // namespace gmem_samples::llm
