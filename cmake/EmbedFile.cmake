# cmake -DINPUT=file -DOUTPUT=file.cpp -DSYMBOL=ns::Function -P EmbedFile.cmake
# Writes a .cpp defining `const std::string& SYMBOL()` returning INPUT's bytes.
file(READ "${INPUT}" content)
string(REGEX REPLACE "::[^:]+$" "" namespace "${SYMBOL}")
string(REGEX REPLACE "^.*::" "" function "${SYMBOL}")
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT}; do not edit.\n#include <string>\nnamespace ${namespace} {\nconst std::string& ${function}() {\n  static const std::string kText = R\"clozit_embed(${content})clozit_embed\";\n  return kText;\n}\n}  // namespace ${namespace}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
