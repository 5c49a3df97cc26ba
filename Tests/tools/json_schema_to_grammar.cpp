// llama.cpp's JSON-schema converter as a command: a JSON schema on standard input, its GBNF grammar on standard
// output (exit 1 with the converter's message when it refuses the schema). setup.sh --llama-cpp builds it against
// the llama.cpp it builds (llama-json-schema-to-grammar); the constrained-decoding parity test compares refrain's
// converter with it on the parity schemas.
#include "json-schema-to-grammar.h"
#include "json.h"

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

int main() {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    try {
        std::cout << json_schema_to_grammar(common_json::parse(text), true);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
