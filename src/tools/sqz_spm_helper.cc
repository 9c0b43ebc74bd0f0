// sqz-spm-helper MODEL: serves SentencePiece requests as JSON lines on stdin/stdout.
// sqz-spm-helper --train "ARGS": runs SentencePiece's trainer (spm_train flags) and exits.
// It exists because libsentencepiece and libtorch's full protobuf cannot live in one process
// (both register protobuf descriptors and the process crashes at start-up), so the tokenizer
// talks to this small process instead. Requests:
//   {"op":"vocab"}                  -> {"pieces":[...]}
//   {"op":"encode","text":"..."}    -> {"pieces":[...]}
//   {"op":"decode","pieces":[...]}  -> {"text":"..."}
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <iostream>
#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  using nlohmann::json;
  if (argc == 3 && std::string(argv[1]) == "--train") {
    auto status = sentencepiece::SentencePieceTrainer::Train(argv[2]);
    if (!status.ok()) {
      std::cerr << "SentencePiece training failed: " << status.ToString() << "\n";
      return 1;
    }
    return 0;
  }
  if (argc != 2) {
    std::cerr << "usage: sqz-spm-helper MODEL | sqz-spm-helper --train \"--input=... --model_prefix=...\"\n";
    return 2;
  }
  sentencepiece::SentencePieceProcessor sp;
  auto status = sp.Load(argv[1]);
  if (!status.ok()) {
    std::cout << json{{"error", status.ToString()}}.dump() << std::endl;
    return 1;
  }
  std::cout << json{{"ok", true}}.dump() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    json reply;
    try {
      json req = json::parse(line);
      std::string op = req.at("op");
      if (op == "vocab") {
        std::vector<std::string> pieces;
        for (int i = 0; i < sp.GetPieceSize(); ++i) pieces.push_back(sp.IdToPiece(i));
        reply["pieces"] = pieces;
      } else if (op == "encode") {
        std::vector<std::string> pieces;
        sp.Encode(req.at("text").get<std::string>(), &pieces);
        reply["pieces"] = pieces;
      } else if (op == "decode") {
        std::string text;
        sp.Decode(req.at("pieces").get<std::vector<std::string>>(), &text);
        reply["text"] = text;
      } else {
        reply["error"] = "unknown op " + op;
      }
    } catch (const std::exception& e) {
      reply = {{"error", e.what()}};
    }
    std::cout << reply.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
  }
  return 0;
}
