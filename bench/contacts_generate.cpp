// Generates a CRM-style contacts CSV for bench/contacts_import.sh.
//
// Usage: contacts_generate ROWS OUT.csv DNC.txt [SEED]
//
// A HubSpot-like export (Record ID, names, email, phone, company, lifecycle
// stage, dates, state, postal code, country, notes) with the number formats
// CRM data really has: "(415) 555-0123", "415.555.0123", "+1 415 555 0123",
// "1-415-555-0123", bare digits, extensions, international numbers with '+'
// and national UK numbers beside a country column. Of the rows:
//   5% invalid (too short, premium-rate 900, unassigned area code, "N/A", empty),
//   3% duplicates of an earlier row's number in another format,
//   2% valid numbers that DNC.txt lists (one E.164 per line) for the tenant's
//      do-not-call list,
//   the rest valid and unique (95% NANP, 5% UK/DE/FR/AU).
// Deterministic for a given seed. Prints the exact counts it wrote.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

struct AreaCode {
  int npa;
  const char* state;
  const char* country;
};

// Area codes in service, with their state or province.
const std::vector<AreaCode> kAreaCodes = {
    {201, "NJ", "US"}, {202, "DC", "US"}, {203, "CT", "US"}, {205, "AL", "US"}, {206, "WA", "US"}, {207, "ME", "US"},
    {208, "ID", "US"}, {210, "TX", "US"}, {212, "NY", "US"}, {213, "CA", "US"}, {214, "TX", "US"}, {215, "PA", "US"},
    {216, "OH", "US"}, {217, "IL", "US"}, {218, "MN", "US"}, {219, "IN", "US"}, {224, "IL", "US"}, {225, "LA", "US"},
    {228, "MS", "US"}, {229, "GA", "US"}, {231, "MI", "US"}, {234, "OH", "US"}, {239, "FL", "US"}, {240, "MD", "US"},
    {248, "MI", "US"}, {251, "AL", "US"}, {252, "NC", "US"}, {253, "WA", "US"}, {254, "TX", "US"}, {256, "AL", "US"},
    {260, "IN", "US"}, {262, "WI", "US"}, {267, "PA", "US"}, {269, "MI", "US"}, {270, "KY", "US"}, {276, "VA", "US"},
    {281, "TX", "US"}, {301, "MD", "US"}, {302, "DE", "US"}, {303, "CO", "US"}, {304, "WV", "US"}, {305, "FL", "US"},
    {307, "WY", "US"}, {308, "NE", "US"}, {309, "IL", "US"}, {310, "CA", "US"}, {312, "IL", "US"}, {313, "MI", "US"},
    {314, "MO", "US"}, {315, "NY", "US"}, {316, "KS", "US"}, {317, "IN", "US"}, {318, "LA", "US"}, {319, "IA", "US"},
    {320, "MN", "US"}, {321, "FL", "US"}, {323, "CA", "US"}, {330, "OH", "US"}, {334, "AL", "US"}, {336, "NC", "US"},
    {337, "LA", "US"}, {339, "MA", "US"}, {347, "NY", "US"}, {352, "FL", "US"}, {360, "WA", "US"}, {361, "TX", "US"},
    {386, "FL", "US"}, {401, "RI", "US"}, {402, "NE", "US"}, {404, "GA", "US"}, {405, "OK", "US"}, {406, "MT", "US"},
    {407, "FL", "US"}, {408, "CA", "US"}, {409, "TX", "US"}, {410, "MD", "US"}, {412, "PA", "US"}, {413, "MA", "US"},
    {414, "WI", "US"}, {415, "CA", "US"}, {417, "MO", "US"}, {419, "OH", "US"}, {423, "TN", "US"}, {425, "WA", "US"},
    {432, "TX", "US"}, {434, "VA", "US"}, {435, "UT", "US"}, {440, "OH", "US"}, {443, "MD", "US"}, {469, "TX", "US"},
    {478, "GA", "US"}, {479, "AR", "US"}, {480, "AZ", "US"}, {501, "AR", "US"}, {502, "KY", "US"}, {503, "OR", "US"},
    {504, "LA", "US"}, {505, "NM", "US"}, {507, "MN", "US"}, {508, "MA", "US"}, {509, "WA", "US"}, {510, "CA", "US"},
    {512, "TX", "US"}, {513, "OH", "US"}, {515, "IA", "US"}, {516, "NY", "US"}, {517, "MI", "US"}, {518, "NY", "US"},
    {520, "AZ", "US"}, {530, "CA", "US"}, {540, "VA", "US"}, {541, "OR", "US"}, {559, "CA", "US"}, {561, "FL", "US"},
    {562, "CA", "US"}, {563, "IA", "US"}, {570, "PA", "US"}, {571, "VA", "US"}, {573, "MO", "US"}, {574, "IN", "US"},
    {580, "OK", "US"}, {585, "NY", "US"}, {586, "MI", "US"}, {601, "MS", "US"}, {602, "AZ", "US"}, {603, "NH", "US"},
    {605, "SD", "US"}, {606, "KY", "US"}, {607, "NY", "US"}, {608, "WI", "US"}, {609, "NJ", "US"}, {610, "PA", "US"},
    {612, "MN", "US"}, {614, "OH", "US"}, {615, "TN", "US"}, {616, "MI", "US"}, {617, "MA", "US"}, {618, "IL", "US"},
    {619, "CA", "US"}, {620, "KS", "US"}, {623, "AZ", "US"}, {626, "CA", "US"}, {630, "IL", "US"}, {631, "NY", "US"},
    {636, "MO", "US"}, {641, "IA", "US"}, {646, "NY", "US"}, {650, "CA", "US"}, {651, "MN", "US"}, {660, "MO", "US"},
    {661, "CA", "US"}, {662, "MS", "US"}, {678, "GA", "US"}, {701, "ND", "US"}, {702, "NV", "US"}, {703, "VA", "US"},
    {704, "NC", "US"}, {706, "GA", "US"}, {707, "CA", "US"}, {708, "IL", "US"}, {712, "IA", "US"}, {713, "TX", "US"},
    {714, "CA", "US"}, {715, "WI", "US"}, {716, "NY", "US"}, {717, "PA", "US"}, {718, "NY", "US"}, {719, "CO", "US"},
    {720, "CO", "US"}, {724, "PA", "US"}, {727, "FL", "US"}, {731, "TN", "US"}, {732, "NJ", "US"}, {734, "MI", "US"},
    {740, "OH", "US"}, {754, "FL", "US"}, {757, "VA", "US"}, {760, "CA", "US"}, {763, "MN", "US"}, {765, "IN", "US"},
    {770, "GA", "US"}, {772, "FL", "US"}, {773, "IL", "US"}, {774, "MA", "US"}, {775, "NV", "US"}, {781, "MA", "US"},
    {785, "KS", "US"}, {786, "FL", "US"}, {801, "UT", "US"}, {802, "VT", "US"}, {803, "SC", "US"}, {804, "VA", "US"},
    {805, "CA", "US"}, {806, "TX", "US"}, {808, "HI", "US"}, {810, "MI", "US"}, {812, "IN", "US"}, {813, "FL", "US"},
    {814, "PA", "US"}, {815, "IL", "US"}, {816, "MO", "US"}, {817, "TX", "US"}, {818, "CA", "US"}, {828, "NC", "US"},
    {830, "TX", "US"}, {831, "CA", "US"}, {832, "TX", "US"}, {843, "SC", "US"}, {845, "NY", "US"}, {847, "IL", "US"},
    {850, "FL", "US"}, {856, "NJ", "US"}, {857, "MA", "US"}, {858, "CA", "US"}, {859, "KY", "US"}, {860, "CT", "US"},
    {862, "NJ", "US"}, {863, "FL", "US"}, {864, "SC", "US"}, {865, "TN", "US"}, {870, "AR", "US"}, {901, "TN", "US"},
    {903, "TX", "US"}, {904, "FL", "US"}, {907, "AK", "US"}, {908, "NJ", "US"}, {909, "CA", "US"}, {910, "NC", "US"},
    {912, "GA", "US"}, {913, "KS", "US"}, {914, "NY", "US"}, {915, "TX", "US"}, {916, "CA", "US"}, {917, "NY", "US"},
    {918, "OK", "US"}, {919, "NC", "US"}, {920, "WI", "US"}, {925, "CA", "US"}, {928, "AZ", "US"}, {931, "TN", "US"},
    {936, "TX", "US"}, {937, "OH", "US"}, {940, "TX", "US"}, {941, "FL", "US"}, {949, "CA", "US"}, {951, "CA", "US"},
    {952, "MN", "US"}, {954, "FL", "US"}, {956, "TX", "US"}, {970, "CO", "US"}, {971, "OR", "US"}, {972, "TX", "US"},
    {973, "NJ", "US"}, {978, "MA", "US"}, {979, "TX", "US"}, {980, "NC", "US"}, {985, "LA", "US"}, {989, "MI", "US"},
    {204, "MB", "CA"}, {250, "BC", "CA"}, {306, "SK", "CA"}, {403, "AB", "CA"}, {416, "ON", "CA"}, {418, "QC", "CA"},
    {438, "QC", "CA"}, {450, "QC", "CA"}, {506, "NB", "CA"}, {514, "QC", "CA"}, {519, "ON", "CA"}, {604, "BC", "CA"},
    {613, "ON", "CA"}, {647, "ON", "CA"}, {705, "ON", "CA"}, {709, "NL", "CA"}, {778, "BC", "CA"}, {780, "AB", "CA"},
    {807, "ON", "CA"}, {819, "QC", "CA"}, {902, "NS", "CA"}, {905, "ON", "CA"},
};

const std::vector<const char*> kFirstNames = {"Ada",  "Grace", "Alan",      "Hedy", "Katherine", "Linus", "Margaret",
                                              "Tim",  "Marie", "Dorothy",   "José", "Zoë",       "Björn", "Amélie",
                                              "Chen", "Priya", "Oluwaseun", "Sean", "Fatima",    "Mateo"};
const std::vector<const char*> kLastNames = {
    "Lovelace", "Hopper",  "Turing", "Lamarr", "Johnson", "Berger", "Hamilton", "Berners-Lee", "Curie",  "Vaughan",
    "García",   "O'Brien", "Müller", "Nguyen", "Smith",   "Patel",  "Okafor",   "Kowalski",    "Haddad", "Rossi"};
const std::vector<const char*> kCompanies = {
    "Acme Corp",         "Globex", "Initech",    "Umbrella, Inc.",      "Stark Industries",
    "Wayne Enterprises", "Hooli",  "Pied Piper", "Vandelay Industries", "Soylent \"Green\" Co"};
const std::vector<const char*> kStages = {"subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer"};

std::string Pad(uint64_t value, int width) {
  std::string text = std::to_string(value);
  return std::string(width > static_cast<int>(text.size()) ? width - text.size() : 0, '0') + text;
}

std::string Quote(const std::string& cell) {
  if (cell.find_first_of(",\"\n\r") == std::string::npos) return cell;
  std::string out = "\"";
  for (char c : cell) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

struct Number {
  std::string e164;
  int npa = 0;  // 0 for international
  std::string nxx, line;
  std::string national;  // international: the national form, e.g. "020 7946 0123"
  std::string international;
  const char* state = "";
  const char* country = "United States";
};

std::string FormatNanp(const Number& n, int style) {
  std::string npa = std::to_string(n.npa);
  switch (style % 8) {
    case 0:
      return "(" + npa + ") " + n.nxx + "-" + n.line;
    case 1:
      return npa + "." + n.nxx + "." + n.line;
    case 2:
      return npa + "-" + n.nxx + "-" + n.line;
    case 3:
      return "+1 " + npa + " " + n.nxx + " " + n.line;
    case 4:
      return "1-" + npa + "-" + n.nxx + "-" + n.line;
    case 5:
      return npa + n.nxx + n.line;
    case 6:
      return "+1" + npa + n.nxx + n.line;
    default:
      return "(" + npa + ") " + n.nxx + "-" + n.line + " x" + std::to_string(100 + style % 900);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: contacts_generate ROWS OUT.csv DNC.txt [SEED]\n";
    return 2;
  }
  uint64_t rows = std::strtoull(argv[1], nullptr, 10);
  std::ofstream out(argv[2], std::ios::binary);
  std::ofstream dnc(argv[3], std::ios::binary);
  std::mt19937_64 random(argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 20260301);
  auto pick = [&](uint64_t n) { return static_cast<size_t>(random() % n); };

  out << "Record ID,First Name,Last Name,Email,Phone Number,Company Name,Lifecycle Stage,Create Date,State/Region,"
         "Postal Code,Country/Region,Notes\r\n";
  std::unordered_set<std::string> used;
  std::vector<Number> issued;  // valid numbers written so far, for duplicates
  uint64_t invalid = 0, duplicates = 0, on_dnc = 0, valid = 0;

  auto fresh_number = [&]() {
    for (;;) {
      Number n;
      if (random() % 100 < 95) {
        const AreaCode& area = kAreaCodes[pick(kAreaCodes.size())];
        int nxx = 200 + static_cast<int>(pick(800));
        if (nxx % 100 == 11) continue;  // N11 codes are not exchanges
        n.npa = area.npa;
        n.nxx = std::to_string(nxx);
        n.line = Pad(pick(10000), 4);
        n.e164 = "+1" + std::to_string(area.npa) + n.nxx + n.line;
        n.state = area.state;
        n.country = std::string(area.country) == "CA" ? "Canada" : "United States";
      } else {
        uint64_t tail = pick(10000);
        switch (pick(4)) {
          case 0:
            n.e164 = "+44207946" + Pad(tail, 4);
            n.international = "+44 20 7946 " + Pad(tail, 4);
            n.national = "020 7946 " + Pad(tail, 4);
            n.country = "United Kingdom";
            break;
          case 1:
            n.e164 = "+4930901" + Pad(tail, 4);
            n.international = "+49 30 901" + Pad(tail, 4);
            n.national = "030 901" + Pad(tail, 4);
            n.country = "Germany";
            break;
          case 2:
            n.e164 = "+3314020" + Pad(tail, 4);
            n.international = "+33 1 40 20 " + Pad(tail / 100, 2) + " " + Pad(tail % 100, 2);
            n.national = "01 40 20 " + Pad(tail / 100, 2) + " " + Pad(tail % 100, 2);
            n.country = "France";
            break;
          default:
            n.e164 = "+6129374" + Pad(tail, 4);
            n.international = "+61 2 9374 " + Pad(tail, 4);
            n.national = "(02) 9374 " + Pad(tail, 4);
            n.country = "Australia";
            break;
        }
      }
      if (used.insert(n.e164).second) return n;
    }
  };
  auto format = [&](const Number& n, int style) {
    if (n.npa != 0) return FormatNanp(n, style);
    return style % 2 == 0 ? n.international : n.national;  // national beside its country column
  };

  for (uint64_t i = 0; i < rows; ++i) {
    uint64_t kind = pick(1000);
    std::string phone;
    const char* state = "";
    std::string country = "United States";
    if (kind < 50) {
      ++invalid;
      switch (pick(5)) {
        case 0:
          phone = "555-" + Pad(pick(10000), 4);
          break;
        case 1:
          phone = "1-900-" + std::to_string(200 + pick(800)) + "-" + Pad(pick(10000), 4);
          break;
        case 2:
          phone = "(123) " + std::to_string(200 + pick(800)) + "-" + Pad(pick(10000), 4);
          break;
        case 3:
          phone = "N/A";
          break;
        default:
          phone = "";
          break;
      }
    } else if (kind < 80 && !issued.empty()) {
      ++duplicates;
      const Number& earlier = issued[pick(issued.size())];
      phone = format(earlier, static_cast<int>(pick(8)));
      state = earlier.state;
      country = earlier.country;
    } else {
      Number n = fresh_number();
      phone = format(n, static_cast<int>(pick(64)));
      state = n.state;
      country = n.country;
      if (kind < 100) {
        ++on_dnc;
        dnc << n.e164 << "\n";
      } else {
        ++valid;
      }
      if (issued.size() < 200000) {
        issued.push_back(n);
      } else {
        issued[pick(issued.size())] = n;
      }
    }
    const char* first = kFirstNames[pick(kFirstNames.size())];
    const char* last = kLastNames[pick(kLastNames.size())];
    std::string email = std::string(first) + "." + last + std::to_string(i) + "@example.com";
    for (auto& c : email) c = (c == ' ' || c == '\'') ? '-' : c;
    std::string notes = pick(20) == 0 ? "Asked for a callback, \"after lunch\"" : "";
    out << (700000000 + i) << ',' << Quote(first) << ',' << Quote(last) << ',' << Quote(email) << ',' << Quote(phone)
        << ',' << Quote(kCompanies[pick(kCompanies.size())]) << ',' << kStages[pick(kStages.size())] << ",2025-"
        << Pad(1 + pick(12), 2) << '-' << Pad(1 + pick(28), 2) << ' ' << Pad(pick(24), 2) << ":00,"
        << (pick(2) == 0 ? state : "") << ",," << Quote(country) << ',' << Quote(notes) << "\r\n";
  }
  std::cerr << "generated " << rows << " rows: " << valid << " valid unique, " << on_dnc << " valid on the DNC list, "
            << duplicates << " duplicates, " << invalid << " invalid\n";
  return out && dnc ? 0 : 1;
}
