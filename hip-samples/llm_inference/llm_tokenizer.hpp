// The llama2.c tokenizer file and byte-pair encoding over it. The file is
// an int32 max_token_length, then for each of vocab_size tokens a float32
// merge score, an int32 byte length and the token's bytes (no terminator).
// Token 1 is BOS and 2 is EOS; tokens 3..258 are the bytes 0x00..0xff,
// written "<0xAB>", for text no other token covers.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace gmem_samples::llm {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kBosToken = 1;
constexpr int kEosToken = 2;
constexpr int kFirstByteToken = 3;  // token of byte b is kFirstByteToken + b

class Tokenizer {
 public:
  // Reads `path` for a model of `vocab_size` tokens; throws TokenizerError
  // for an unreadable or truncated file, a negative length, or trailing
  // bytes.
  static Tokenizer load(const std::string& path, int vocab_size);
  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores);

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int token) const { return pieces_.at(static_cast<std::size_t>(token)); }

  // Text -> tokens: an optional BOS, a leading space as the format expects
  // (" " is prepended to non-empty text), one token per UTF-8 character (a
  // byte token for each byte of a character the vocabulary lacks), then
  // repeated merging of the adjacent pair whose joined piece has the best
  // score, until no pair joins into a known piece.
  std::vector<int> encode(const std::string& text, bool bos, bool eos) const;

  // The bytes token `token` stands for when it follows `previous`: a byte
  // token gives its byte, and the leading space of the first piece after
  // BOS is dropped.
  std::string decode(int previous, int token) const;

  // decode() of a whole sequence (the first token's previous is BOS).
  std::string decode_all(const std::vector<int>& tokens) const;

 private:
  int lookup(const std::string& piece) const;  // -1 if absent

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> ids_;
};

// Writes a tokenizer file (for tests and tools): the inverse of load().
void write_tokenizer_file(const std::string& path, const std::vector<std::string>& pieces,
                          const std::vector<float>& scores);

}  // namespace gmem_samples::llm
