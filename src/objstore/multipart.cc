#include "objstore/multipart.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

namespace recsync::objstore {

std::vector<PartRange> plan_parts(uint64_t size, uint64_t part_size) {
  part_size = std::clamp(part_size, kMinPartSize, kMaxPartSize);
  uint64_t needed = (size + kMaxParts - 1) / kMaxParts;
  part_size = std::max(part_size, needed);
  std::vector<PartRange> parts;
  if (size == 0) return {{1, 0, 0}};
  for (uint64_t off = 0; off < size; off += part_size) {
    parts.push_back({int(parts.size()) + 1, off, std::min(part_size, size - off)});
  }
  return parts;
}

std::vector<int> parts_to_send(const std::vector<LocalPart>& local,
                               const std::vector<Part>& stored) {
  std::map<int, const Part*> have;
  for (const Part& p : stored) have[p.number] = &p;
  std::vector<int> out;
  for (const LocalPart& l : local) {
    auto it = have.find(l.number);
    bool same = it != have.end() && it->second->size == l.length && it->second->etag == l.md5_hex;
    if (!same) out.push_back(l.number);
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// MD5 of one part, read from disk.
S3Status part_md5(const FileRange& body, const PartRange& p, const std::string& key,
                  std::array<uint8_t, Md5::kLen>& out) {
  Md5 m;
  std::vector<char> buf(std::min<uint64_t>(1 << 20, std::max<uint64_t>(p.length, 1)));
  uint64_t done = 0;
  while (done < p.length) {
    size_t want = std::min<uint64_t>(buf.size(), p.length - done);
    ssize_t n = ::pread(body.fd, buf.data(), want, off_t(body.offset + p.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = n < 0 ? Status::from_errno(errno, "multipart " + key + ": read")
                       : Status::io("multipart " + key + ": file shorter than the range");
      return S3Status(ErrorKind::kLocal, s);
    }
    m.update(buf.data(), size_t(n));
    done += uint64_t(n);
  }
  out = m.finish();
  return S3Status::ok();
}

}  // namespace

S3Result<MultipartResult> upload_multipart(
    S3Client& client, const std::string& key, const FileRange& body, const MultipartOptions& opts,
    const std::string& resume_upload_id,
    const std::function<void(const std::string&)>& on_created) {
  std::vector<PartRange> plan = plan_parts(body.length, opts.part_size);
  std::vector<std::array<uint8_t, Md5::kLen>> md5s(plan.size());
  std::vector<LocalPart> local;
  for (size_t i = 0; i < plan.size(); ++i) {
    S3Status st = part_md5(body, plan[i], key, md5s[i]);
    if (!st.is_ok()) return st;
    local.push_back({plan[i].number, plan[i].length, hex_lower(md5s[i])});
  }
  MultipartResult res;
  std::vector<Part> stored;
  if (resume_upload_id.empty()) {
    auto id = client.create_multipart_upload(key, opts.put);
    if (!id.is_ok()) return id.status();
    res.upload_id = id.value();
    if (on_created) on_created(res.upload_id);
  } else {
    res.upload_id = resume_upload_id;
    auto have = client.list_parts(key, res.upload_id);
    if (!have.is_ok()) return have.status();
    stored = std::move(have.value());
  }
  std::vector<int> send = parts_to_send(local, stored);
  for (int n : send) {
    const PartRange& p = plan[size_t(n - 1)];
    FileRange range{body.fd, body.offset + p.offset, p.length};
    auto etag =
        client.upload_part(key, res.upload_id, n, range, base64_encode(md5s[size_t(n - 1)]));
    if (!etag.is_ok()) return etag.status();
    if (etag.value() != local[size_t(n - 1)].md5_hex) {
      return s3_error(ErrorKind::kBadDigest, "UploadPart s3://" + client.options().bucket + "/" +
                                                 key + " part " + std::to_string(n) +
                                                 ": store's ETag differs from the part's MD5");
    }
    ++res.parts_sent;
  }
  res.parts_reused = int(plan.size()) - res.parts_sent;
  std::vector<Part> parts;
  for (const LocalPart& l : local) parts.push_back({l.number, l.md5_hex, l.length});
  auto done = client.complete_multipart_upload(key, res.upload_id, parts);
  if (!done.is_ok()) return done.status();
  res.etag = multipart_etag(md5s);
  res.version_id = done->version_id;
  if (opts.put.legal_hold) {
    // RGW 16.2 drops the legal-hold header of CreateMultipartUpload.
    S3Status st = client.put_legal_hold(key, true, res.version_id);
    if (!st.is_ok()) {
      return S3Status(st.kind(),
                      st.status().with_context("upload completed but its legal hold not set"),
                      st.http_status(), st.s3_code());
    }
  }
  return res;
}

}  // namespace recsync::objstore
