#include "scenario.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace clozit::emulator {
namespace {

Result<Persona> ParsePersona(const nlohmann::json& entry) {
  Persona persona;
  if (!entry.is_object()) return Error::InvalidArgument("persona", "a persona must be an object");
  if (auto it = entry.find("persona"); it != entry.end()) {
    if (!it->is_string()) return Error::InvalidArgument("persona", "persona must be a string");
    CLOZIT_ASSIGN_OR_RETURN(persona.kind, ParsePersonaKind(it->get<std::string>()));
  }
  if (auto it = entry.find("ring_seconds"); it != entry.end() && it->is_number()) persona.ring_seconds = *it;
  if (auto it = entry.find("talk_seconds"); it != entry.end() && it->is_number()) persona.talk_seconds = *it;
  if (auto it = entry.find("hangup_after_seconds"); it != entry.end() && it->is_number()) persona.talk_seconds = *it;
  return persona;
}

}  // namespace

std::string_view PersonaName(PersonaKind kind) {
  switch (kind) {
    case PersonaKind::kAnswer:
      return "answer";
    case PersonaKind::kMachine:
      return "machine";
    case PersonaKind::kBusy:
      return "busy";
    case PersonaKind::kNoAnswer:
      return "no_answer";
    case PersonaKind::kInvalid:
      return "invalid";
    case PersonaKind::kReject:
      return "reject";
  }
  return "answer";
}

Result<PersonaKind> ParsePersonaKind(std::string_view name) {
  for (auto kind : {PersonaKind::kAnswer, PersonaKind::kMachine, PersonaKind::kBusy, PersonaKind::kNoAnswer,
                    PersonaKind::kInvalid, PersonaKind::kReject}) {
    if (PersonaName(kind) == name) return kind;
  }
  return Error::InvalidArgument("persona", "unknown persona '" + std::string(name) + "'");
}

Result<Scenario> Scenario::FromJson(std::string_view text) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return Error::InvalidArgument("scenario", "not a JSON object");
  Scenario scenario;
  if (auto it = json.find("default"); it != json.end()) {
    CLOZIT_ASSIGN_OR_RETURN(scenario.fallback, ParsePersona(*it));
  }
  if (auto it = json.find("rules"); it != json.end()) {
    if (!it->is_array()) return Error::InvalidArgument("rules", "rules must be an array");
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("match") || !entry["match"].is_string()) {
        return Error::InvalidArgument("rules", "every rule needs a string 'match'");
      }
      CLOZIT_ASSIGN_OR_RETURN(auto persona, ParsePersona(entry));
      scenario.rules.push_back({entry["match"].get<std::string>(), persona});
    }
  }
  return scenario;
}

Result<Scenario> Scenario::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::InvalidArgument("scenario", "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return FromJson(text.str());
}

const Persona& Scenario::For(std::string_view number) const {
  for (const auto& rule : rules) {
    if (!rule.match.empty() && rule.match.back() == '*') {
      if (number.starts_with(std::string_view(rule.match).substr(0, rule.match.size() - 1))) return rule.persona;
    } else if (rule.match == number) {
      return rule.persona;
    }
  }
  return fallback;
}

}  // namespace clozit::emulator
