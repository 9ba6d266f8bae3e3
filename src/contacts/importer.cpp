#include "contacts/importer.hpp"

#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "contacts/csv_writer.hpp"
#include "contacts/detail/number_set.hpp"
#include "contacts/header_mapping.hpp"

namespace clozit::contacts {
namespace {

using json = nlohmann::json;
using storage::Row;
using storage::Tx;
using storage::Value;

constexpr size_t kMaxRawBytes = 4096;
constexpr size_t kMaxCustomValueBytes = 1024;
// Up to this many exact do-not-call entries are loaded into memory for a job
// (8 bytes each); beyond it each number is looked up in the database.
constexpr int64_t kMaxDncInMemory = 8'000'000;
constexpr int64_t kDncPage = 100'000;

using detail::NumberKey;

constexpr const char* kJobColumns =
    "id, tenant_id, list_id, consent_id, status, file_name, file_bytes, header, byte_offset, rows_read, accepted, "
    "rejected, duplicates, on_dnc, error, created_at, updated_at, finished_at, file_path, options, line";

ImportJob JobFromRow(const Row& row) {
  ImportJob job;
  job.id = ImportId(row.Text(0));
  job.tenant_id = TenantId(row.Text(1));
  job.list_id = row.Text(2);
  job.consent_id = row.Text(3);
  job.status = row.Text(4);
  job.file_name = row.Text(5);
  job.file_bytes = static_cast<uint64_t>(row.Int(6));
  auto header = json::parse(row.Text(7), nullptr, false);
  if (header.is_object() && header.contains("format") && header["format"].is_string()) {
    job.format = header["format"].get<std::string>();
  }
  job.bytes_read = static_cast<uint64_t>(row.Int(8));
  job.rows_read = static_cast<uint64_t>(row.Int(9));
  job.accepted = static_cast<uint64_t>(row.Int(10));
  job.rejected = static_cast<uint64_t>(row.Int(11));
  job.duplicates = static_cast<uint64_t>(row.Int(12));
  job.on_dnc = static_cast<uint64_t>(row.Int(13));
  job.error = row.Text(14);
  job.created_at = FromUnixMillis(row.Int(15));
  job.updated_at = FromUnixMillis(row.Int(16));
  if (auto finished = row.OptionalInt(17)) job.finished_at = FromUnixMillis(*finished);
  return job;
}

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

// Appends `text` as a JSON string (the input is valid UTF-8: the reader checked it).
void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 15]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

std::string TagsArrayJson(const std::vector<std::string>& tags) {
  std::string out = "[";
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(out, tags[i]);
  }
  return out + "]";
}

std::string RawRow(const CsvRecord& record) {
  std::vector<std::string> cells;
  cells.reserve(record.size());
  for (size_t i = 0; i < record.size(); ++i) cells.push_back(SanitizeUtf8(record.field(i)));
  std::string line;
  AppendCsvRow(line, cells, true);
  line.resize(line.size() - 2);  // the CRLF; the export adds its own
  if (line.size() > kMaxRawBytes) return "(a row of " + std::to_string(line.size()) + " bytes; not kept)";
  return line;
}

json OptionsJson(const ImportOptions& options) {
  return {{"default_country", options.default_country}, {"mapping", options.mapping}, {"tags", options.tags}};
}

ImportOptions OptionsFromJson(const std::string& text) {
  ImportOptions options;
  auto parsed = json::parse(text, nullptr, false);
  if (!parsed.is_object()) return options;
  if (parsed.contains("default_country") && parsed["default_country"].is_string()) {
    options.default_country = parsed["default_country"].get<std::string>();
  }
  if (parsed.contains("mapping") && parsed["mapping"].is_object()) {
    for (const auto& [field, name] : parsed["mapping"].items()) {
      if (name.is_string()) options.mapping[field] = name.get<std::string>();
    }
  }
  if (parsed.contains("tags") && parsed["tags"].is_array()) {
    for (const auto& tag : parsed["tags"]) {
      if (tag.is_string()) options.tags.push_back(tag.get<std::string>());
    }
  }
  return options;
}

}  // namespace

std::string SanitizeUtf8(std::string_view text) {
  if (IsValidUtf8(text) && text.find('\0') == std::string_view::npos) return std::string(text);
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (c != 0 && length > 0 && i + length <= text.size() && IsValidUtf8(text.substr(i, length))) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::optional<std::string> CountryCodeFor(std::string_view text, const PhoneNumbers& numbers) {
  std::string folded;
  for (char c : Trim(text)) {
    if (c != '.') folded.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (folded.empty()) return std::nullopt;
  if (folded.size() == 2) {
    std::string code = {static_cast<char>(std::toupper(static_cast<unsigned char>(folded[0]))),
                        static_cast<char>(std::toupper(static_cast<unsigned char>(folded[1])))};
    if (code == "UK") return std::string("GB");
    if (numbers.IsKnownCountry(code)) return code;
  }
  // English country names from ICU, plus the usual abbreviations; built once, then read-only.
  static const std::unordered_map<std::string, std::string> names = [] {
    std::unordered_map<std::string, std::string> out = {{"usa", "US"},     {"united states of america", "US"},
                                                        {"america", "US"}, {"great britain", "GB"},
                                                        {"england", "GB"}, {"scotland", "GB"},
                                                        {"wales", "GB"},   {"northern ireland", "GB"}};
    icu::Locale english("en", "US");
    for (const char* const* code = icu::Locale::getISOCountries(); *code != nullptr; ++code) {
      icu::UnicodeString display;
      icu::Locale("", *code).getDisplayCountry(english, display);
      std::string name;
      display.toUTF8String(name);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.emplace(name, *code);
    }
    return out;
  }();
  auto found = names.find(folded);
  if (found == names.end()) return std::nullopt;
  return found->second;
}

// One contact ready to insert, its text fields back to back in one string
// (one allocation a row: a batch of 100,000 stays around 50 MB).
struct PreparedContact {
  enum Field {
    kTenantPlaceholder = -1,  // a column of the insert that is the job's, not the row's
    kId,
    kE164,
    kType,
    kCountry,
    kRegion,
    kZones,
    kName,
    kEmail,
    kCompany,
    kCustom,
    kTags,
    kFields
  };
  std::string data;
  std::array<uint32_t, kFields> ends{};
  int64_t created_at = 0;
  bool on_dnc = false;

  void Add(Field field, std::string_view text) {
    data.append(text);
    ends[field] = static_cast<uint32_t>(data.size());
  }
  std::string_view Get(Field field) const {
    uint32_t begin = field == kId ? 0 : ends[field - 1];
    return std::string_view(data).substr(begin, ends[field] - begin);
  }
};

constexpr const char* kInsertContact =
    "INSERT INTO contacts (id, tenant_id, e164, number_type, country, region, time_zones, name, email, company, "
    "custom_fields, tags, source, consent_id, consent_revoked_at, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, $15, $15) "
    "ON CONFLICT (tenant_id, e164) DO NOTHING";
// The batch's new contacts join the list in one statement: their ids as a JSON array.
const std::string& InsertNewMembersSql(storage::Dialect dialect) {
  static const std::string sqlite =
      "INSERT INTO contact_list_members (list_id, contact_id) SELECT $1, value FROM json_each($2) WHERE true "
      "ON CONFLICT (list_id, contact_id) DO NOTHING";
  static const std::string postgres =
      "INSERT INTO contact_list_members (list_id, contact_id) SELECT $1, j FROM "
      "json_array_elements_text(CAST($2 AS TEXT)::json) AS j ON CONFLICT (list_id, contact_id) DO NOTHING";
  return dialect == storage::Dialect::kSqlite ? sqlite : postgres;
}
constexpr const char* kInsertExistingMember =
    "INSERT INTO contact_list_members (list_id, contact_id) SELECT $1, id FROM contacts WHERE tenant_id = $2 AND "
    "e164 = $3 ON CONFLICT (list_id, contact_id) DO NOTHING";

struct Rejection {
  uint64_t row = 0;
  uint64_t line = 0;
  std::string reason;
  std::string raw;
};

struct Importer::Batch {
  std::vector<PreparedContact> contacts;
  std::vector<Rejection> rejections;
  uint64_t file_duplicates = 0;  // repeated within the file: dropped before the database
  uint64_t end_offset = 0;
  uint64_t line = 1;
  uint64_t rows_read = 0;  // cumulative, data rows
  bool last = false;
  std::string header_json;  // written with the batch (the first one after the header is read)
};

Importer::Importer(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit,
                   const PhoneNumbers& numbers, Contacts& contacts, DoNotCall& dnc, ImporterSettings settings)
    : db_(db),
      clock_(clock),
      random_(random),
      audit_(audit),
      numbers_(numbers),
      contacts_(contacts),
      dnc_(dnc),
      settings_(std::move(settings)) {
  if (settings_.batch_rows == 0) settings_.batch_rows = db_.dialect() == storage::Dialect::kSqlite ? 100000 : 5000;
}

Result<ImportJob> Importer::Create(const TenantId& tenant, const ImportRequest& request, const privacy::Actor& actor) {
  CLOZIT_TRY(ValidateConsent(request.consent, clock_.Now()));
  std::string region = request.options.default_country;
  for (auto& c : region) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!numbers_.IsKnownCountry(region)) {
    return Error::InvalidArgument("default_country", "default_country must be an ISO country code such as US");
  }
  for (const auto& [field, name] : request.options.mapping) {
    const auto& known = MappableFields();
    if (std::find(known.begin(), known.end(), field) == known.end()) {
      return Error::InvalidArgument("mapping." + field, "unknown field \"" + field + "\" in the mapping");
    }
  }
  CLOZIT_ASSIGN_OR_RETURN(auto tags, CleanTags(request.options.tags));
  std::error_code error;
  auto size = std::filesystem::file_size(request.file_path, error);
  if (error) return Error::InvalidArgument("file", "cannot read the file: " + error.message());
  std::ifstream probe(request.file_path, std::ios::binary);
  if (!probe) return Error::InvalidArgument("file", "cannot open the file");
  CLOZIT_ASSIGN_OR_RETURN(std::string file_name, CleanText(request.file_name, "file_name", 255));

  ImportOptions options = request.options;
  options.default_country = region;
  options.tags = tags;
  ImportJob job;
  job.id = ImportId::New(clock_, random_);
  job.tenant_id = tenant;
  job.list_id = request.list_id ? request.list_id->str() : "";
  job.status = "pending";
  job.file_name = file_name;
  job.file_bytes = size;
  job.created_at = job.updated_at = clock_.Now();
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    if (request.list_id) {
      CLOZIT_ASSIGN_OR_RETURN(auto lists, tx.Query("SELECT id FROM contact_lists WHERE tenant_id = $1 AND id = $2",
                                                   {tenant.str(), request.list_id->str()}));
      if (lists.empty()) return Error::NotFound("no such contact list");
    }
    CLOZIT_ASSIGN_OR_RETURN(ConsentRecord consent, contacts_.CreateConsent(tx, tenant, request.consent));
    job.consent_id = consent.id.str();
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO contact_imports (id, tenant_id, list_id, consent_id, status, file_name, file_path, file_bytes, "
        "options, header, byte_offset, line, rows_read, accepted, rejected, duplicates, on_dnc, error, created_by, "
        "created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, '{}', 0, 1, 0, 0, 0, 0, 0, '', $9, "
        "$10, $10)",
        {job.id.str(), tenant.str(), job.list_id.empty() ? Value(nullptr) : Value(job.list_id), job.consent_id,
         file_name, request.file_path, static_cast<int64_t>(size), OptionsJson(options).dump(), actor.id,
         ToUnixMillis(job.created_at)}));
    return audit_.Record(tx, actor,
                         {"contact_import.create", "contact_import", job.id.str(),
                          json({{"consent_id", job.consent_id}, {"file_bytes", size}}).dump()},
                         tenant.str());
  }));
  return job;
}

Result<ImportJob> Importer::Get(const TenantId& tenant, const ImportId& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kJobColumns +
                                                   " FROM contact_imports WHERE tenant_id = $1 AND id = $2",
                                               {tenant.str(), id.str()}));
  if (rows.empty()) return Error::NotFound("no such import");
  return JobFromRow(rows.front());
}

Result<std::string> Importer::FilePath(const TenantId& tenant, const ImportId& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT file_path FROM contact_imports WHERE tenant_id = $1 AND id = $2",
                                               {tenant.str(), id.str()}));
  if (rows.empty()) return Error::NotFound("no such import");
  return rows.front().Text(0);
}

Result<Page<ImportJob>> Importer::List(const TenantId& tenant, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          db_.Query(std::string("SELECT ") + kJobColumns +
                                        " FROM contact_imports WHERE tenant_id = $1 AND ($2 = '' OR id < $2) "
                                        "ORDER BY id DESC LIMIT $3",
                                    {tenant.str(), page.cursor, page.limit + 1}));
  Page<ImportJob> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    out.items.push_back(JobFromRow(rows[i]));
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
  return out;
}

Result<std::vector<ImportJob>> Importer::Unfinished() {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kJobColumns +
                                               " FROM contact_imports WHERE status IN ('pending', 'running') "
                                               "ORDER BY id"));
  std::vector<ImportJob> out;
  for (const auto& row : rows) out.push_back(JobFromRow(row));
  return out;
}

Result<int64_t> Importer::ExportRejected(const TenantId& tenant, const ImportId& id, std::ostream& out) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT header FROM contact_imports WHERE tenant_id = $1 AND id = $2",
                                               {tenant.str(), id.str()}));
  if (rows.empty()) return Error::NotFound("no such import");
  std::vector<std::string> header = {"row", "line", "reason"};
  auto parsed = json::parse(rows.front().Text(0), nullptr, false);
  if (parsed.is_object() && parsed.contains("fields") && parsed["fields"].is_array()) {
    for (const auto& field : parsed["fields"]) header.push_back(field.is_string() ? field.get<std::string>() : "");
  }
  WriteCsvRow(out, header, true);
  int64_t written = 0;
  int64_t after = 0;
  for (;;) {
    CLOZIT_ASSIGN_OR_RETURN(auto page,
                            db_.Query("SELECT row_number, line, reason, raw FROM contact_import_rejections "
                                      "WHERE import_id = $1 AND row_number > $2 ORDER BY row_number LIMIT 1000",
                                      {id.str(), after}));
    std::string chunk;
    for (const auto& row : page) {
      chunk += std::to_string(row.Int(0)) + "," + std::to_string(row.Int(1)) + "," + CsvCell(row.Text(2), true) + "," +
               row.Text(3) + "\r\n";
      after = row.Int(0);
      ++written;
    }
    out << chunk;
    if (!out) return Error::Make(ErrorCode::kUnavailable, "cannot write the export");
    if (page.size() < 1000) break;
  }
  return written;
}

// Runs one job: reads and prepares batches on the calling thread while the
// previous batch commits on another.
class Importer::Runner {
 public:
  Runner(Importer& importer, ImportJob job, std::string file_path, ImportOptions options, std::string header_json,
         uint64_t line)
      : importer_(importer),
        job_(std::move(job)),
        file_path_(std::move(file_path)),
        options_(std::move(options)),
        header_json_(std::move(header_json)),
        line_(line),
        source_("import:" + job_.id.str()),
        id_random_(importer.random_.NextU64()) {}

  Result<ImportJob> Run(const ProgressCallback& progress, const std::atomic<bool>* stop) {
    progress_ = progress;
    std::ifstream file(file_path_, std::ios::binary);
    if (!file) return Error::Make(ErrorCode::kUnavailable, "cannot open the import file");
    std::error_code size_error;
    auto size = std::filesystem::file_size(file_path_, size_error);
    if (size_error || size != job_.file_bytes) {
      return Error::Make(ErrorCode::kConflict, "the import file changed since the job was created");
    }
    IstreamSource source(file);
    CsvOptions csv = importer_.settings_.csv;
    std::vector<std::string> header;
    if (job_.bytes_read > 0) {
      auto parsed = json::parse(header_json_, nullptr, false);
      if (!parsed.is_object() || !parsed.contains("fields") || !parsed.contains("delimiter")) {
        return Error::Internal("the job's header record is missing");
      }
      for (const auto& field : parsed["fields"]) header.push_back(field.get<std::string>());
      std::string delimiter = parsed["delimiter"].get<std::string>();
      file.seekg(static_cast<std::streamoff>(job_.bytes_read));
      if (!file) return Error::Make(ErrorCode::kUnavailable, "cannot seek in the import file");
      csv.delimiter = delimiter.empty() ? ',' : delimiter[0];
      csv.start_offset = job_.bytes_read;
      csv.start_row = job_.rows_read + 1;
      csv.start_line = line_;
      csv.expected_fields = header.size();
    }
    reader_ = std::make_unique<CsvReader>(source, csv);
    CsvRecord record;
    std::string header_json;
    if (job_.bytes_read == 0) {
      if (!reader_->Next(record)) return Error::InvalidArgument("file", "the file is empty");
      if (!record.ok()) return Error::InvalidArgument("file", "the header row: " + record.error_message);
      header = record.Fields();
      CLOZIT_ASSIGN_OR_RETURN(mapping_, MapHeader(header, options_.mapping));
      header_json =
          json({{"delimiter", std::string(1, reader_->delimiter())}, {"fields", header}, {"format", mapping_.format}})
              .dump(-1, ' ', false, json::error_handler_t::replace);
      job_.format = mapping_.format;
    } else {
      CLOZIT_ASSIGN_OR_RETURN(mapping_, MapHeader(header, options_.mapping));
    }
    header_ = std::move(header);
    CLOZIT_TRY(LoadDnc());

    Batch batch;
    batch.header_json = header_json;
    std::optional<std::future<Result<CommitResult>>> in_flight;
    auto wait_in_flight = [&]() -> Result<void> {
      if (!in_flight) return Ok();
      auto committed = in_flight->get();
      in_flight.reset();
      if (!committed) return committed.error();
      Apply(*committed);
      return Ok();
    };
    auto submit = [&](Batch&& full) -> Result<void> {
      CLOZIT_TRY(MarkDnc(full));
      CLOZIT_TRY(wait_in_flight());
      auto shared = std::make_shared<Batch>(std::move(full));
      in_flight = std::async(std::launch::async, [this, shared] { return Commit(*shared); });
      return Ok();
    };

    size_t rows_in_batch = 0;
    bool stopped = false;
    while (reader_->Next(record)) {
      Prepare(record, batch);
      batch.end_offset = record.end_offset;
      batch.line = reader_->line();
      batch.rows_read = record.row - 1;
      if (++rows_in_batch >= importer_.settings_.batch_rows) {
        CLOZIT_TRY(submit(std::move(batch)));
        batch = Batch();
        rows_in_batch = 0;
        if (stop != nullptr && stop->load()) {
          stopped = true;
          break;
        }
      }
    }
    if (!stopped) {
      batch.last = true;
      batch.end_offset = std::max<uint64_t>(batch.end_offset, reader_->bytes_consumed());
      batch.line = reader_->line();
      if (batch.rows_read == 0) batch.rows_read = reader_->rows_read() > 0 ? reader_->rows_read() - 1 : 0;
      CLOZIT_TRY(submit(std::move(batch)));
    }
    CLOZIT_TRY(wait_in_flight());
    return job_;
  }

 private:
  struct CommitResult {
    uint64_t accepted = 0;
    uint64_t duplicates = 0;
    uint64_t on_dnc = 0;
    uint64_t rejected = 0;
    uint64_t end_offset = 0;
    uint64_t rows_read = 0;
    bool last = false;
    TimePoint at;
  };

  std::string_view Cell(const CsvRecord& record, int column) const {
    if (column < 0 || static_cast<size_t>(column) >= record.size()) return {};
    return record.field(static_cast<size_t>(column));
  }

  void Reject(Batch& batch, const CsvRecord& record, std::string reason) {
    batch.rejections.push_back({record.row, record.line, std::move(reason), RawRow(record)});
  }

  void Prepare(const CsvRecord& record, Batch& batch) {
    if (!record.ok()) {
      // The reader's message starts with "row N (line L): "; the export has its own columns for those.
      std::string reason = record.error_message;
      if (auto colon = reason.find("): "); colon != std::string::npos) reason = reason.substr(colon + 3);
      Reject(batch, record, std::move(reason));
      return;
    }
    std::string_view phone;
    for (int column : mapping_.phones) {
      std::string_view cell = Cell(record, column);
      if (cell.find_first_not_of(" \t") != std::string_view::npos) {
        phone = cell;
        break;
      }
    }
    if (phone.empty()) return Reject(batch, record, "no phone number");
    const std::string* region = &options_.default_country;
    std::string row_country;
    if (auto cell = Cell(record, mapping_.country); !cell.empty()) {
      if (auto code = CountryCodeFor(cell, importer_.numbers_)) {
        row_country = *code;
        region = &row_country;
      }
    }
    auto number = importer_.numbers_.Normalize(phone, *region, "phone");
    if (!number) return Reject(batch, record, number.error().message);
    if (!seen_.Insert(NumberKey(number->e164))) {
      ++batch.file_duplicates;
      return;
    }

    PreparedContact contact;
    std::string name;
    if (auto full = Cell(record, mapping_.name); !full.empty()) {
      name = std::string(full);
    } else {
      name = Trim(Cell(record, mapping_.first_name));
      std::string last = Trim(Cell(record, mapping_.last_name));
      if (!last.empty()) name += (name.empty() ? "" : " ") + last;
    }
    auto clean_name = CleanText(name, "name", kMaxNameBytes);
    if (!clean_name) return UndoSeen(batch, record, *number, clean_name.error().message);
    auto email = CleanText(Cell(record, mapping_.email), "email", kMaxEmailBytes);
    if (!email) return UndoSeen(batch, record, *number, email.error().message);
    auto company = CleanText(Cell(record, mapping_.company), "company", kMaxCompanyBytes);
    if (!company) return UndoSeen(batch, record, *number, company.error().message);
    std::vector<std::string> tags = SplitTags(Cell(record, mapping_.tags));
    tags.insert(tags.end(), options_.tags.begin(), options_.tags.end());
    auto clean_tags = CleanTags(tags);
    if (!clean_tags) return UndoSeen(batch, record, *number, clean_tags.error().message);

    std::string custom = "{";
    for (int column : mapping_.custom) {
      std::string value = Trim(Cell(record, column));
      if (value.empty()) continue;
      if (value.size() > kMaxCustomValueBytes) {
        return UndoSeen(batch, record, *number,
                        "column \"" + SanitizeUtf8(header_[static_cast<size_t>(column)]) + "\" is longer than " +
                            std::to_string(kMaxCustomValueBytes) + " bytes");
      }
      if (custom.size() > 1) custom.push_back(',');
      AppendJsonString(custom, header_[static_cast<size_t>(column)]);
      custom.push_back(':');
      AppendJsonString(custom, value);
    }
    custom.push_back('}');
    if (custom.size() > kMaxCustomFieldsBytes) {
      return UndoSeen(batch, record, *number, "the unmapped columns hold more than 16 KiB");
    }

    LocationHints hints{std::string(Cell(record, mapping_.time_zone)), std::string(Cell(record, mapping_.state)),
                        std::string(Cell(record, mapping_.zip))};
    if (!hints.time_zone.empty() || !hints.state.empty() || !hints.zip.empty()) {
      importer_.numbers_.AddHintZones(*number, hints);  // a column it cannot read adds nothing
    }

    std::string id = ContactId::New(importer_.clock_, id_random_).str();
    std::string zones = JoinZones(number->zones);
    std::string tags_json = TagsArrayJson(*clean_tags);
    contact.data.reserve(id.size() + number->e164.size() + zones.size() + clean_name->size() + email->size() +
                         company->size() + custom.size() + tags_json.size() + 48);
    contact.Add(PreparedContact::kId, id);
    contact.Add(PreparedContact::kE164, number->e164);
    contact.Add(PreparedContact::kType, NumberTypeName(number->type));
    contact.Add(PreparedContact::kCountry, number->country);
    contact.Add(PreparedContact::kRegion, number->region);
    contact.Add(PreparedContact::kZones, zones);
    contact.Add(PreparedContact::kName, *clean_name);
    contact.Add(PreparedContact::kEmail, *email);
    contact.Add(PreparedContact::kCompany, *company);
    contact.Add(PreparedContact::kCustom, custom);
    contact.Add(PreparedContact::kTags, tags_json);
    contact.created_at = ToUnixMillis(importer_.clock_.Now());
    batch.contacts.push_back(std::move(contact));
  }

  void UndoSeen(Batch& batch, const CsvRecord& record, const NormalizedNumber& number, std::string reason) {
    seen_.Erase(NumberKey(number.e164));  // a later, valid row with this number may still come
    Reject(batch, record, std::move(reason));
  }

  // Do-not-call entries as of the job's start: wildcards always in memory
  // (few), exact numbers too unless there are millions. Entries added while
  // the job runs are not counted here; the dialer checks every call anyway.
  Result<void> LoadDnc() {
    const std::string tenant = job_.tenant_id.str();
    CLOZIT_ASSIGN_OR_RETURN(auto wildcards, importer_.db_.Query("SELECT number FROM dnc_entries WHERE tenant_id IN "
                                                                "($1, '') AND number LIKE '%*'",
                                                                {tenant}));
    for (const auto& row : wildcards) {
      std::string prefix = row.Text(0);
      prefix.pop_back();
      wildcards_.insert(std::move(prefix));
    }
    CLOZIT_ASSIGN_OR_RETURN(auto count, importer_.db_.Query("SELECT count(*) FROM dnc_entries WHERE tenant_id IN "
                                                            "($1, '')",
                                                            {tenant}));
    if (count.empty() || count.front().Int(0) > kMaxDncInMemory) return Ok();
    for (const std::string& scope : {tenant, std::string()}) {
      std::string after;
      for (;;) {
        CLOZIT_ASSIGN_OR_RETURN(auto page, importer_.db_.Query("SELECT number FROM dnc_entries WHERE tenant_id = $1 "
                                                               "AND number > $2 ORDER BY number LIMIT $3",
                                                               {scope, after, kDncPage}));
        for (const auto& row : page) {
          std::string number = row.Text(0);
          if (!number.empty() && number.back() != '*') dnc_exact_.Insert(NumberKey(number));
          after = std::move(number);
        }
        if (static_cast<int64_t>(page.size()) < kDncPage) break;
      }
    }
    dnc_in_memory_ = true;
    return Ok();
  }

  bool MatchesWildcard(std::string_view e164) const {
    if (wildcards_.empty()) return false;
    for (size_t length = 3; length <= 9 && length < e164.size(); ++length) {
      if (wildcards_.count(std::string(e164.substr(0, length))) > 0) return true;
    }
    return false;
  }

  // Marks each contact that a do-not-call entry blocks.
  Result<void> MarkDnc(Batch& batch) {
    if (batch.contacts.empty()) return Ok();
    if (dnc_in_memory_) {
      for (auto& contact : batch.contacts) {
        std::string_view e164 = contact.Get(PreparedContact::kE164);
        contact.on_dnc = MatchesWildcard(e164) || dnc_exact_.Contains(NumberKey(e164));
      }
      return Ok();
    }
    // Too many entries to hold: primary-key lookups on a read snapshot beside the writer.
    return importer_.db_.Read([&](Tx& tx) -> Result<void> {
      for (auto& contact : batch.contacts) {
        std::string e164(contact.Get(PreparedContact::kE164));
        contact.on_dnc = MatchesWildcard(e164);
        if (contact.on_dnc) continue;
        CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT 1 FROM dnc_entries WHERE tenant_id IN ($1, '') AND "
                                                    "number = $2 LIMIT 1",
                                                    {job_.tenant_id.str(), e164}));
        contact.on_dnc = !rows.empty();
      }
      return Ok();
    });
  }

  Result<CommitResult> Commit(const Batch& batch) {
    CommitResult result;
    const std::string tenant = job_.tenant_id.str();
    TimePoint now = importer_.clock_.Now();
    int64_t now_ms = ToUnixMillis(now);
    auto written = importer_.db_.Write([&](Tx& tx) -> Result<void> {
      result = CommitResult();  // a retried transaction starts over
      result.at = now;
      // One parameter vector reused row after row: assigning into its strings
      // keeps their capacity, so the writer allocates next to nothing.
      storage::Params insert(15, std::string());
      insert[1] = tenant;
      insert[12] = source_;
      insert[13] = job_.consent_id;
      storage::Params existing = {job_.list_id, tenant, std::string()};
      std::string new_ids = "[";
      constexpr PreparedContact::Field kColumns[] = {PreparedContact::kId,      PreparedContact::kTenantPlaceholder,
                                                     PreparedContact::kE164,    PreparedContact::kType,
                                                     PreparedContact::kCountry, PreparedContact::kRegion,
                                                     PreparedContact::kZones,   PreparedContact::kName,
                                                     PreparedContact::kEmail,   PreparedContact::kCompany,
                                                     PreparedContact::kCustom,  PreparedContact::kTags};
      // Inserted in number order, the batch walks the (tenant_id, e164) index once from left to right
      // instead of landing on random pages; the batch's ids, handed out in that same order, keep the id
      // indexes appending at their right edge.
      std::vector<uint32_t> order(batch.contacts.size());
      std::iota(order.begin(), order.end(), 0u);
      std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return batch.contacts[a].Get(PreparedContact::kE164) < batch.contacts[b].Get(PreparedContact::kE164);
      });
      std::vector<std::string_view> ids;
      ids.reserve(batch.contacts.size());
      for (const auto& c : batch.contacts) ids.push_back(c.Get(PreparedContact::kId));
      std::sort(ids.begin(), ids.end());
      for (size_t k = 0; k < order.size(); ++k) {
        const PreparedContact& c = batch.contacts[order[k]];
        for (size_t column = 0; column < std::size(kColumns); ++column) {
          if (column == 1) continue;  // tenant_id, set once
          std::get<std::string>(insert[column]).assign(column == 0 ? ids[k] : c.Get(kColumns[column]));
        }
        insert[14] = c.created_at;
        CLOZIT_ASSIGN_OR_RETURN(int64_t inserted, tx.Exec(kInsertContact, insert));
        if (inserted > 0) {
          ++result.accepted;
          if (!job_.list_id.empty()) {
            if (new_ids.size() > 1) new_ids.push_back(',');
            AppendJsonString(new_ids, ids[k]);
          }
        } else {
          ++result.duplicates;
          if (!job_.list_id.empty()) {
            std::get<std::string>(existing[2]).assign(c.Get(PreparedContact::kE164));
            CLOZIT_TRY(tx.Exec(kInsertExistingMember, existing));
          }
        }
        if (c.on_dnc) ++result.on_dnc;
      }
      if (new_ids.size() > 1) {
        new_ids.push_back(']');
        CLOZIT_TRY(tx.Exec(InsertNewMembersSql(tx.dialect()), {job_.list_id, new_ids}));
      }
      for (const auto& r : batch.rejections) {
        CLOZIT_TRY(
            tx.Exec("INSERT INTO contact_import_rejections (import_id, row_number, line, reason, raw) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (import_id, row_number) DO NOTHING",
                    {job_.id.str(), static_cast<int64_t>(r.row), static_cast<int64_t>(r.line), r.reason, r.raw}));
      }
      result.rejected = batch.rejections.size();
      result.duplicates += batch.file_duplicates;
      result.end_offset = batch.end_offset;
      result.rows_read = batch.rows_read;
      result.last = batch.last;
      CLOZIT_TRY(tx.Exec(
          "UPDATE contact_imports SET status = $1, byte_offset = $2, line = $3, rows_read = $4, "
          "accepted = accepted + $5, rejected = rejected + $6, duplicates = duplicates + $7, on_dnc = on_dnc + $8, "
          "header = CASE WHEN CAST($9 AS TEXT) = '' THEN header ELSE CAST($9 AS TEXT) END, error = '', updated_at = "
          "$10, finished_at = $11 "
          "WHERE id = $12",
          {std::string(batch.last ? "completed" : "running"), static_cast<int64_t>(batch.end_offset),
           static_cast<int64_t>(batch.line), static_cast<int64_t>(batch.rows_read),
           static_cast<int64_t>(result.accepted), static_cast<int64_t>(result.rejected),
           static_cast<int64_t>(result.duplicates), static_cast<int64_t>(result.on_dnc), batch.header_json, now_ms,
           batch.last ? Value(now_ms) : Value(nullptr), job_.id.str()}));
      if (!batch.last) return Ok();
      CLOZIT_ASSIGN_OR_RETURN(auto totals, tx.QueryOne("SELECT accepted, rejected, duplicates, on_dnc, rows_read "
                                                       "FROM contact_imports WHERE id = $1",
                                                       {job_.id.str()}));
      privacy::Actor system{"system", "importer", tenant, "", ""};
      return importer_.audit_.Record(tx, system,
                                     {"contact_import.complete", "contact_import", job_.id.str(),
                                      json({{"rows", totals.Int(4)},
                                            {"accepted", totals.Int(0)},
                                            {"rejected", totals.Int(1)},
                                            {"duplicates", totals.Int(2)},
                                            {"on_dnc", totals.Int(3)}})
                                          .dump()},
                                     tenant);
    });
    if (!written) return written.error();
    return result;
  }

  void Apply(const CommitResult& committed) {
    job_.accepted += committed.accepted;
    job_.duplicates += committed.duplicates;
    job_.on_dnc += committed.on_dnc;
    job_.rejected += committed.rejected;
    job_.bytes_read = committed.end_offset;
    job_.rows_read = committed.rows_read;
    job_.updated_at = committed.at;
    job_.status = committed.last ? "completed" : "running";
    if (committed.last) job_.finished_at = committed.at;
    if (progress_) progress_(job_);
  }

  Importer& importer_;
  ImportJob job_;
  std::string file_path_;
  ImportOptions options_;
  std::string header_json_;
  uint64_t line_;
  std::string source_;  // contacts.source of every imported contact
  // Contact ids need to be unique, not secret: a generator seeded from the
  // system's, instead of a getrandom(2) call per row.
  SeededRandom id_random_;
  std::unique_ptr<CsvReader> reader_;
  HeaderMapping mapping_;
  std::vector<std::string> header_;
  detail::NumberSet seen_;       // numbers already in this file (since the job started or resumed)
  detail::NumberSet dnc_exact_;  // the tenant's and the platform's exact entries, when few enough
  bool dnc_in_memory_ = false;
  std::unordered_set<std::string> wildcards_;
  ProgressCallback progress_;
};

void Importer::BoostCache(bool on) {
  if (db_.dialect() != storage::Dialect::kSqlite || settings_.sqlite_cache_kib <= 0) return;
  std::optional<int64_t> original;
  {
    std::lock_guard lock(running_mutex_);
    cache_boosts_ += on ? 1 : -1;
    // Only the first import to start and the last to end touch the setting.
    if (cache_boosts_ != (on ? 1 : 0)) return;
    original = original_cache_size_;
  }
  // A tuning knob, not data: failing to change it only costs speed. A larger page cache keeps the
  // random-order (tenant, number) index in memory. Checkpoints are not touched: the database runs them
  // beside the writer (ADR 0019), and `PRAGMA wal_autocheckpoint` would replace that with SQLite's own.
  auto changed = db_.Write([&](Tx& tx) -> Result<void> {
    if (!original) {
      CLOZIT_ASSIGN_OR_RETURN(auto cache, tx.Query("PRAGMA cache_size"));
      original = cache.empty() ? -2000 : cache.front().Int(0);
      std::lock_guard lock(running_mutex_);
      if (!original_cache_size_) original_cache_size_ = original;
    }
    CLOZIT_TRY(tx.Query("PRAGMA cache_size = " + std::to_string(on ? -settings_.sqlite_cache_kib : *original)));
    return Ok();
  });
  (void)changed;
}

Result<ImportJob> Importer::Run(const TenantId& tenant, const ImportId& id, const ProgressCallback& progress,
                                const std::atomic<bool>* stop) {
  {
    std::lock_guard lock(running_mutex_);
    if (!running_.insert(id.str()).second) {
      return Error::Make(ErrorCode::kConflict, "this import is already running");
    }
  }
  struct Release {
    Importer& importer;
    std::string id;
    ~Release() {
      std::lock_guard lock(importer.running_mutex_);
      importer.running_.erase(id);
    }
  } release{*this, id.str()};

  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kJobColumns +
                                                   " FROM contact_imports WHERE tenant_id = $1 AND id = $2",
                                               {tenant.str(), id.str()}));
  if (rows.empty()) return Error::NotFound("no such import");
  ImportJob job = JobFromRow(rows.front());
  if (job.status == "completed") return job;
  std::string file_path = rows.front().Text(18);
  ImportOptions options = OptionsFromJson(rows.front().Text(19));
  uint64_t line = static_cast<uint64_t>(std::max<int64_t>(rows.front().Int(20), 1));
  std::string header_json = rows.front().Text(7);
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("UPDATE contact_imports SET status = 'running', updated_at = $1 WHERE id = $2",
                       {ToUnixMillis(clock_.Now()), id.str()}));
    return Ok();
  }));
  job.status = "running";

  BoostCache(true);
  Runner runner(*this, job, file_path, options, header_json, line);
  auto result = runner.Run(progress, stop);
  BoostCache(false);
  if (!result) {
    std::string message = result.error().message;
    (void)db_.Write([&](Tx& tx) -> Result<void> {
      CLOZIT_TRY(tx.Exec("UPDATE contact_imports SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3",
                         {message, ToUnixMillis(clock_.Now()), id.str()}));
      return Ok();
    });
    return result.error();
  }
  return result;
}

}  // namespace clozit::contacts
