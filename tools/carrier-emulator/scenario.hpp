// carrier-emulator: callee personas and the scenario file that picks them by number.
//
// A scenario file (JSON) maps numbers or prefix patterns ("+1555010*") to personas:
//   {"default": {"persona": "answer", "talk_seconds": 5},
//    "rules": [{"match": "+15550100002", "persona": "busy"},
//              {"match": "+1555011*", "persona": "machine", "ring_seconds": 2}]}
// Personas: answer (talks for talk_seconds then hangs up), machine (answering
// machine: greeting then beep), busy, no_answer, invalid (REST refuses the
// number), reject. ring_seconds < 0 means a random 1–8 s. The first matching
// rule wins. Values; thread-safe once built.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace clozit::emulator {

enum class PersonaKind { kAnswer, kMachine, kBusy, kNoAnswer, kInvalid, kReject };

struct Persona {
  PersonaKind kind = PersonaKind::kAnswer;
  double ring_seconds = -1;  // < 0: random between 1 and 8 s
  double talk_seconds = 5;   // answer: until the callee hangs up; machine: greeting length
};

std::string_view PersonaName(PersonaKind kind);
Result<PersonaKind> ParsePersonaKind(std::string_view name);

struct ScenarioRule {
  std::string match;  // exact E.164, or a prefix ending in '*'
  Persona persona;
};

struct Scenario {
  std::vector<ScenarioRule> rules;
  Persona fallback;

  static Result<Scenario> FromJson(std::string_view text);
  static Result<Scenario> Load(const std::string& path);
  const Persona& For(std::string_view number) const;
};

}  // namespace clozit::emulator
