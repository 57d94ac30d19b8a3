#!/usr/bin/env python3
"""Builds crates/region/data/cn-regions.bin, the caller-region table sihai embeds.

Why this exists: sihai routes 400-number calls by the caller's province and city, and
that needs real numbering data (mobile 7-digit segments and landline area codes). The
source is `phone.dat` from the PyPI package `phone` (MIT, see README.md and
LICENSE-phone). This script turns it into a compact, validated table that the Rust
crate checks and loads in a few milliseconds, and is the only way that file is made: never edit
the .bin by hand.

Usage (standard library only, Python 3.8+):

    python3 crates/region/data/build.py                 # pip-downloads phone==0.4.5
    python3 crates/region/data/build.py --sdist phone-0.4.5.tar.gz
    python3 crates/region/data/build.py --phone-dat path/to/phone.dat
    python3 crates/region/data/build.py --dump cn-regions.bin > regions.tsv

The input is checked against the pinned SHA-256 below, so a rebuild from the same
release reproduces the committed files byte for byte; pass --allow-unpinned to build
from another release (then update PHONE_VERSION/the hashes and README.md).

Output, next to this script:
  cn-regions.bin       the table (format below)
  cn-regions-check.tsv a sample of expected lookups, decoded independently of the Rust
                       code, that the crate's tests compare against

Format v1 of cn-regions.bin, all integers little-endian:

  header (16 bytes)
    0  4  magic b"SHRG"
    4  2  format version = 1
    6  2  reserved, 0
    8  4  CRC-32 (IEEE, as zlib.crc32) of the payload
    12 4  payload length in bytes (the file is exactly 16 + this long)
  payload
    u8 len + UTF-8        source description (e.g. "phone 0.4.5 phone.dat 2312")
    u16 n                 strings: n x (u8 len, UTF-8), province and city names
    u16 n                 regions: n x (u16 province string, u16 city string)
    u16 n                 area codes: n x (u8 digits 3|4, u16 value without the
                          leading 0, e.g. 3 + 10 for 010, 4 + 755 for 0755, u16 region)
    u32 base, u32 count   mobile segments base .. base+count-1 (7 digits, 1xxxxxx)
    count x u16           region of segment base+i, 0xFFFF where unknown
"""

import argparse
import collections
import hashlib
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

PHONE_VERSION = "0.4.5"
SDIST_SHA256 = "96d2f83c1698155227ca143abd8b1d50d04a46f5764ddee6b03ebe60a55037ec"
PHONE_DAT_SHA256 = "cb17a69eafa68d7706cfcc68d47cdf165ea916e9d5c476b4dd5f06cf74aed23d"

MAGIC = b"SHRG"
FORMAT_VERSION = 1
NONE = 0xFFFF

HERE = os.path.dirname(os.path.abspath(__file__))

# Suffixes removed from names, longest first ("北京市" -> "北京", "广西壮族自治区" -> "广西").
# phone.dat already writes short names; this keeps the rule explicit should it change.
SUFFIXES = ["特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"]

MUNICIPALITIES = {"北京", "上海", "天津", "重庆"}

# Area codes written wrongly in phone.dat 2312 (493 segments of 锡林郭勒 say "00479").
AREA_CODE_FIXES = {"00479": "0479"}

# Places phone.dat names below (or before) the prefecture they belong to while sharing
# that prefecture's area code, folded into the prefecture's name as phone.dat itself
# mostly writes it, so that a region rule on "呼伦贝尔" also catches 海拉尔's segments.
# County-level places with an area code of their own (格尔木 0979, 奎屯 0992, 济源,
# 仙桃/潜江/天门/江汉 0728, 神农架, 雄安) are left as they are.
CITY_ALIASES = {
    ("内蒙古", "海拉尔"): "呼伦贝尔",
    ("内蒙古", "集宁"): "乌兰察布",
    ("内蒙古", "临河"): "巴彦淖尔",
    ("内蒙古", "锡林浩特"): "锡林郭勒",
    ("内蒙古", "锡林郭勒盟"): "锡林郭勒",
    ("内蒙古", "乌兰浩特"): "兴安",
    ("内蒙古", "兴安盟"): "兴安",
    ("内蒙古", "阿拉善盟"): "阿拉善",
    ("吉林", "延吉"): "延边",
    ("吉林", "珲春"): "延边",
    ("吉林", "梅河口"): "通化",
    ("河南", "潢川"): "信阳",
    ("安徽", "巢湖"): "合肥",  # 巢湖 prefecture was dissolved in 2011; 0551 is 合肥's.
    ("湖南", "吉首"): "湘西",
    ("四川", "西昌"): "凉山",
    ("贵州", "都匀"): "黔南",
    ("贵州", "凯里"): "黔东南",
    ("贵州", "兴义"): "黔西南",
    ("云南", "思茅"): "普洱",  # renamed in 2007
    ("陕西", "商州"): "商洛",
    ("青海", "海晏"): "海北",
    ("青海", "共和"): "海南",
    ("青海", "德令哈"): "海西",
    ("新疆", "克孜勒苏"): "克州",
    ("新疆", "博乐"): "博州",
    ("新疆", "博尔塔拉"): "博州",
    ("新疆", "库尔勒"): "巴州",
    ("新疆", "巴音郭楞"): "巴州",
}


def strip_suffix(name):
    for s in SUFFIXES:
        if name.endswith(s) and len(name) > len(s):
            return name[: -len(s)]
    return name


def normalise(province, city):
    province = strip_suffix(province.strip())
    city = strip_suffix(city.strip())
    city = CITY_ALIASES.get((province, city), city)
    if province in MUNICIPALITIES:
        city = province  # 重庆/万州, 重庆/涪陵 ... are districts of 重庆
    return province, city


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fetch_sdist(workdir):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "-d", workdir, "phone==" + PHONE_VERSION],
        check=True,
    )
    names = [n for n in os.listdir(workdir) if n.endswith(".tar.gz")]
    if len(names) != 1:
        sys.exit("expected one sdist in %s, found %r" % (workdir, names))
    return os.path.join(workdir, names[0])


def phone_dat_from_sdist(path, allow_unpinned):
    with open(path, "rb") as f:
        raw = f.read()
    if sha256(raw) != SDIST_SHA256 and not allow_unpinned:
        sys.exit("%s: SHA-256 %s is not the pinned phone %s sdist" % (path, sha256(raw), PHONE_VERSION))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/phone/phone.dat"))
        return tar.extractfile(member).read()


def parse_phone_dat(buf):
    """phone.dat: <4s version><i32 first index offset>, NUL-terminated records
    "province|city|zip|area code", then 9-byte index entries <i32 segment><i32 record
    offset><u8 carrier>, sorted by segment."""
    version, first = struct.unpack_from("<4si", buf, 0)
    records = {}
    off = 8
    while off < first:
        end = buf.index(b"\0", off)
        records[off] = buf[off:end].decode("utf-8")
        off = end + 1
    if (len(buf) - first) % 9:
        sys.exit("phone.dat: index area is not a whole number of entries")
    segments = []
    prev = -1
    for seg, rec, _carrier in struct.iter_unpack("<iiB", buf[first:]):
        if seg <= prev:
            sys.exit("phone.dat: index not strictly sorted at %d" % seg)
        prev = seg
        province, city, _zip, code = records[rec].split("|")
        segments.append((seg, province, city, code))
    return version.decode("ascii"), segments


def check_area_code(code):
    if not (code.isdigit() and code[0] == "0" and len(code) in (3, 4) and code[1] != "0"):
        sys.exit("bad area code %r" % code)


def build(buf):
    dat_version, raw_segments = parse_phone_dat(buf)

    segments = {}  # segment -> (province, city)
    code_votes = collections.defaultdict(collections.Counter)  # code -> region -> segments
    for seg, province, city, code in raw_segments:
        if not 1000000 <= seg <= 1999999:
            sys.exit("segment %d is not 7 digits starting with 1" % seg)
        region = normalise(province, city)
        segments[seg] = region
        code = AREA_CODE_FIXES.get(code, code)
        check_area_code(code)
        code_votes[code][region] += 1

    # A landline area code resolves to the region most of its mobile segments are in
    # (023 -> 重庆, 0731 -> 长沙, 0898 -> 海口); ties go to the smaller name.
    area_codes = {}
    for code, votes in code_votes.items():
        area_codes[code] = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    codes = set(area_codes)
    for code in codes:
        if len(code) == 4 and code[:3] in codes:
            sys.exit("area codes %s and %s overlap" % (code[:3], code))

    regions = sorted(set(segments.values()) | set(area_codes.values()))
    region_index = {r: i for i, r in enumerate(regions)}
    strings = sorted({name for r in regions for name in r})
    string_index = {s: i for i, s in enumerate(strings)}
    if len(strings) >= NONE or len(regions) >= NONE:
        sys.exit("too many names for u16 indices")

    source = "phone %s phone.dat %s" % (PHONE_VERSION, dat_version)
    out = bytearray()

    def put_str(s):
        b = s.encode("utf-8")
        if not 0 < len(b) < 256:
            sys.exit("name %r does not fit a u8 length" % s)
        out.append(len(b))
        out.extend(b)

    put_str(source)
    out += struct.pack("<H", len(strings))
    for s in strings:
        put_str(s)
    out += struct.pack("<H", len(regions))
    for p, c in regions:
        out += struct.pack("<HH", string_index[p], string_index[c])
    out += struct.pack("<H", len(area_codes))
    for code in sorted(area_codes):
        out += struct.pack("<BHH", len(code), int(code[1:]), region_index[area_codes[code]])
    base, last = min(segments), max(segments)
    count = last - base + 1
    out += struct.pack("<II", base, count)
    table = [NONE] * count
    for seg, region in segments.items():
        table[seg - base] = region_index[region]
    out += struct.pack("<%dH" % count, *table)

    header = MAGIC + struct.pack("<HHII", FORMAT_VERSION, 0, zlib.crc32(out) & 0xFFFFFFFF, len(out))
    stats = {
        "source": source,
        "segments": len(segments),
        "area codes": len(area_codes),
        "regions": len(regions),
        "provinces": len({p for p, _ in regions}),
        "strings": len(strings),
        "segment range": "%d..=%d" % (base, last),
    }
    return bytes(header + out), segments, area_codes, stats


def decode(data):
    """An independent reader of format v1 (used by --dump and to self-check a build)."""
    magic, version, _res, crc, length = struct.unpack_from("<4sHHII", data, 0)
    payload = data[16:]
    assert magic == MAGIC and version == FORMAT_VERSION and len(payload) == length
    assert zlib.crc32(payload) & 0xFFFFFFFF == crc
    pos = 0

    def get_str():
        nonlocal pos
        n = payload[pos]
        s = payload[pos + 1 : pos + 1 + n].decode("utf-8")
        pos += 1 + n
        return s

    def get(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, payload, pos)
        pos += struct.calcsize(fmt)
        return v

    source = get_str()
    strings = [get_str() for _ in range(get("<H")[0])]
    regions = []
    for _ in range(get("<H")[0]):
        p, c = get("<HH")
        regions.append((strings[p], strings[c]))
    codes = {}
    for _ in range(get("<H")[0]):
        digits, value, region = get("<BHH")
        codes["0" + str(value).zfill(digits - 1)] = regions[region]
    base, count = get("<II")
    table = get("<%dH" % count)
    assert pos == len(payload)
    segments = {base + i: regions[r] for i, r in enumerate(table) if r != NONE}
    return source, regions, codes, segments


def write_check(path, segments, area_codes):
    """Expected lookups for the Rust tests: every area code (as a full landline number)
    and every 499th known segment, plus some unknown ones."""
    lines = ["# number\tprovince\tcity (empty: no region). Generated by build.py; do not edit."]
    for code in sorted(area_codes):
        p, c = area_codes[code]
        lines.append("%s\t%s\t%s" % (code + "2345678" + ("" if len(code) == 4 else "9"), p, c))
    known = sorted(segments)
    for seg in known[::499]:
        p, c = segments[seg]
        lines.append("%d%04d\t%s\t%s" % (seg, seg % 9973, p, c))
    unknown = [s for s in range(1300000, 2000000, 1009) if s not in segments]
    for seg in unknown:
        lines.append("%d0000\t\t" % seg)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines) - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--sdist", help="phone-%s.tar.gz already downloaded" % PHONE_VERSION)
    src.add_argument("--phone-dat", help="a phone.dat file")
    src.add_argument("--dump", metavar="BIN", help="print a built table as TSV and exit")
    ap.add_argument("--allow-unpinned", action="store_true", help="accept input whose hash is not pinned")
    ap.add_argument("--out-dir", default=HERE)
    args = ap.parse_args()

    if args.dump:
        with open(args.dump, "rb") as f:
            source, regions, codes, segments = decode(f.read())
        print("# %s" % source)
        for code in sorted(codes):
            print("%s\t%s\t%s" % ((code,) + codes[code]))
        for seg in sorted(segments):
            print("%d\t%s\t%s" % ((seg,) + segments[seg]))
        return

    if args.phone_dat:
        with open(args.phone_dat, "rb") as f:
            buf = f.read()
    else:
        if args.sdist:
            sdist = args.sdist
            buf = phone_dat_from_sdist(sdist, args.allow_unpinned)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                buf = phone_dat_from_sdist(fetch_sdist(tmp), args.allow_unpinned)
    if sha256(buf) != PHONE_DAT_SHA256 and not args.allow_unpinned:
        sys.exit("phone.dat SHA-256 %s is not the pinned one" % sha256(buf))

    data, segments, area_codes, stats = build(buf)
    source, _regions, codes, decoded = decode(data)
    assert codes == area_codes and decoded == segments, "round trip failed"

    bin_path = os.path.join(args.out_dir, "cn-regions.bin")
    with open(bin_path, "wb") as f:
        f.write(data)
    checks = write_check(os.path.join(args.out_dir, "cn-regions-check.tsv"), segments, area_codes)
    for k, v in stats.items():
        print("%-14s %s" % (k + ":", v))
    print("%-14s %d bytes, sha256 %s" % ("table:", len(data), sha256(data)))
    print("%-14s %d expected lookups" % ("checks:", checks))


if __name__ == "__main__":
    main()
