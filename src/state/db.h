#pragma once
// The state database's connection: SQLite in WAL mode, the schema and its
// migrations, the statement cache, transactions, small key/value metadata
// and the knobs a bulk pass tunes. The tables themselves (recordings,
// replication queue, holds, audit) are separate classes over one Db.
//
// Storage: WAL journal, synchronous=NORMAL (a power cut may lose the last
// commits, never consistency), busy_timeout 5 s, foreign keys off. Schema
// versioned with PRAGMA user_version (kSchemaVersion). Prepared statements are
// cached for the life of the connection.
//
// Thread safety: one mutex serializes every statement (SQLite runs in its
// no-mutex mode under it). The table classes take a Db::Lock for each call
// and pass it down, so a transaction spanning two tables (record a
// recording and queue it for the peers) is one lock and one BEGIN..COMMIT.
//
// Errors: SQLite failures become Status values naming the database path;
// SQLITE_CORRUPT / SQLITE_NOTADB become kCorrupt, SQLITE_BUSY kBusy,
// SQLITE_FULL kNoSpace, the rest kIo.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "recsync/env.h"
#include "recsync/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace recsync {

class Db {
 public:
  static constexpr int kSchemaVersion = 6;

  // Opens (creating if absent) the database at path and, with verify, checks
  // it (PRAGMA quick_check: reads the whole file, seconds for a
  // 500k-recording DB on a cold cache; the daemon verifies only after an
  // unclean shutdown). A file that is not a database (detected either way) or
  // fails the check gives kCorrupt with the path: the caller may quarantine()
  // it and open again to start empty. A schema newer than kSchemaVersion
  // gives kInvalid (a downgrade; do not quarantine).
  static Result<std::unique_ptr<Db>> open(const std::string& path, bool verify);

  // Renames path, path-wal and path-shm (those that exist) to
  // "<name>.corrupt-<unixtime>" (time from env), never over an existing file,
  // and fsyncs the folder. The database must not be open.
  static Status quarantine(Env* env, const std::string& path);

  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& path() const { return path_; }

  // Proof that the connection's mutex is held.
  class Lock {
   public:
    explicit Lock(Db& db) : l_(db.mu_) {}

   private:
    std::unique_lock<std::mutex> l_;
  };

  // BEGIN IMMEDIATE ... COMMIT, rolled back unless committed.
  class Txn {
   public:
    Txn(Db& db, const Lock& l) : db_(db), l_(l) {}
    ~Txn();
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    Status begin();
    Status commit();

   private:
    Db& db_;
    const Lock& l_;
    bool began_ = false, done_ = false;
  };

  // The cached prepared statement for sql (a string literal: the cache is
  // keyed by its text). Reset it after use (sql_util.h Use).
  Result<sqlite3_stmt*> stmt(const Lock&, const char* sql);
  Status exec(const Lock&, const char* sql);
  // A Status for SQLite result code rc, naming the database and `what`.
  Status error(int rc, const std::string& what) const;
  // Rows changed by the last statement; the rowid of the last insert.
  int64_t changes(const Lock&) const;
  int64_t last_insert_id(const Lock&) const;

  // Small key/value metadata (meta table).
  Result<std::optional<std::string>> get_meta(const std::string& key);
  Status set_meta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> get_meta(const Lock&, const std::string& key);
  Status set_meta(const Lock&, const std::string& key, const std::string& value);

  // This connection's SQLite page cache in KiB (PRAGMA cache_size, default
  // 2,000 KiB). A bulk pass (the pruner) raises it for the pass so the pages
  // of a big transaction stay in memory instead of spilling to the WAL
  // several times, and restores it after; lowering it releases the memory.
  Result<int64_t> cache_kib();
  Status set_cache_kib(int64_t kib);
  // WAL pages after which a commit checkpoints (PRAGMA wal_autocheckpoint,
  // SQLite's default 1,000). A bulk pass raises it so the pages it dirties
  // again in every transaction reach the database file once, not once per
  // checkpoint, and puts the old value back after; the next commit then
  // checkpoints what built up.
  Result<int64_t> wal_autocheckpoint();
  Status set_wal_autocheckpoint(int64_t pages);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  Db(std::string path, DbPtr db);
  Status init_schema(const Lock& l, bool verify);

  std::string path_;
  std::mutex mu_;
  DbPtr db_;
  std::unordered_map<std::string, StmtPtr> stmts_;
};

}  // namespace recsync
