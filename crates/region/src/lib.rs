//! The caller's region (province and city) from a Chinese phone number.
//!
//! This crate exists because 400-number plans route and screen calls by where the
//! caller is: "calls from 广东 go to the Shenzhen group", "block 海南". It answers that
//! from real numbering data, not a sample: mobile numbers by their 7-digit segment
//! (号段, `1380013` → 北京/北京), landlines by area code (`010` → 北京, `0755` →
//! 广东/深圳). The data is the `phone` package's `phone.dat` (MIT), turned into a
//! compact table by `data/build.py` and embedded with `include_bytes!`; see
//! `data/README.md` for its source, version and licence.
//!
//! Names are normalised: no 省/市/自治区/特别行政区 suffix (广西, 内蒙古, 深圳), a
//! prefecture's own name rather than a county town sharing its area code (呼伦贝尔,
//! not 海拉尔), and for the four municipalities the city is the province (重庆/重庆,
//! including 万州 and 涪陵).
//!
//! ```
//! use sihai_region::RegionTable;
//!
//! let table = RegionTable::embedded();
//! let r = table.lookup("075512345678").unwrap();
//! assert_eq!((r.province, r.city), ("广东", "深圳"));
//! assert!(table.lookup("4008001234").is_none());
//! ```

mod format;

use std::borrow::Cow;
use std::sync::OnceLock;

use format::NONE;

/// The table sihai ships, built by `data/build.py`.
static EMBEDDED_BYTES: &[u8] = include_bytes!("../data/cn-regions.bin");

/// Where a number is from. Names carry no administrative suffix ("广东", "深圳");
/// for the municipalities (北京, 上海, 天津, 重庆) `province == city`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region<'a> {
    pub province: &'a str,
    pub city: &'a str,
}

/// Why a table could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegionError {
    #[error("region table is truncated ({0})")]
    Truncated(&'static str),
    #[error("not a sihai region table (bad magic)")]
    BadMagic,
    #[error("region table format version {0} is not supported (this build reads 1)")]
    UnsupportedVersion(u16),
    #[error("region table payload is {actual} bytes, its header says {expected}")]
    Length { expected: usize, actual: usize },
    #[error("region table checksum mismatch: header {expected:#010x}, data {actual:#010x}")]
    Checksum { expected: u32, actual: u32 },
    #[error("region table is corrupt: {0}")]
    Corrupt(&'static str),
}

/// Mobile segments and landline area codes with their regions.
pub struct RegionTable {
    source: String,
    names: Vec<Box<str>>,
    regions: Vec<(u16, u16)>,
    /// Distinct province name indices, in region order.
    provinces: Vec<u16>,
    landline3: Box<[u16; 100]>,
    landline4: Box<[u16; 1000]>,
    area_codes: usize,
    segment_base: u32,
    /// `u16` little-endian region per segment from `segment_base` on: borrowed from the
    /// binary for the embedded table, copied for [`RegionTable::from_bytes`].
    segments: Cow<'static, [u8]>,
    known_segments: usize,
}

impl std::fmt::Debug for RegionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionTable")
            .field("source", &self.source)
            .field("segments", &self.known_segments)
            .field("area_codes", &self.area_codes)
            .field("regions", &self.regions.len())
            .finish()
    }
}

impl RegionTable {
    /// The table shipped with sihai (`data/cn-regions.bin`, embedded in the binary),
    /// checked and indexed on first use (a few milliseconds in release) and shared
    /// afterwards. Its segment array is used in place, not copied.
    pub fn embedded() -> &'static RegionTable {
        static TABLE: OnceLock<RegionTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The file is a build artefact checked by this crate's tests.
            Self::build(EMBEDDED_BYTES, |range| {
                Cow::Borrowed(&EMBEDDED_BYTES[range])
            })
            .expect("embedded data/cn-regions.bin is a valid region table")
        })
    }

    /// Loads a table in the format `data/build.py` writes. Everything is checked
    /// (checksum, lengths, indices, UTF-8, area codes); bad input is an error, never
    /// a panic.
    pub fn from_bytes(data: &[u8]) -> Result<RegionTable, RegionError> {
        Self::build(data, |range| Cow::Owned(data[range].to_vec()))
    }

    fn build(
        data: &[u8],
        segments: impl FnOnce(std::ops::Range<usize>) -> Cow<'static, [u8]>,
    ) -> Result<RegionTable, RegionError> {
        let p = format::parse(data)?;
        let mut provinces: Vec<u16> = Vec::new();
        for &(province, _) in &p.regions {
            if !provinces
                .iter()
                .any(|&q| p.names[q as usize] == p.names[province as usize])
            {
                provinces.push(province);
            }
        }
        Ok(RegionTable {
            source: p.source,
            names: p.names,
            regions: p.regions,
            provinces,
            landline3: p.landline3,
            landline4: p.landline4,
            area_codes: p.area_codes,
            segment_base: p.segment_base,
            segments: segments(p.segments),
            known_segments: p.known_segments,
        })
    }

    /// The region of a normalised national number: a mobile number (11 digits starting
    /// with 1, `13800138000`) by its first 7 digits, or a landline (`0` + area code +
    /// 7- or 8-digit subscriber number: `01012345678`, `075512345678`) by its area
    /// code. Anything else (400 numbers, `+86…`, separators, wrong lengths), or a
    /// prefix the data does not know, is `None`. O(1).
    pub fn lookup(&self, number: &str) -> Option<Region<'_>> {
        let b = number.as_bytes();
        if !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let digit = |i: usize| (b[i] - b'0') as usize;
        let region = match b.first()? {
            b'1' if b.len() == 11 => {
                let segment = b[..7]
                    .iter()
                    .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
                self.segment_region(segment)?
            }
            b'0' if (10..=12).contains(&b.len()) => {
                let three = self.landline3[digit(1) * 10 + digit(2)];
                let four = self.landline4[digit(1) * 100 + digit(2) * 10 + digit(3)];
                let subscriber = |code_len: usize| (7..=8).contains(&(b.len() - code_len));
                if three != NONE && subscriber(3) {
                    three
                } else if four != NONE && subscriber(4) {
                    four
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        Some(self.region(region))
    }

    fn segment_region(&self, segment: u32) -> Option<u16> {
        let i = segment.checked_sub(self.segment_base)? as usize;
        let pair = self.segments.get(i * 2..i * 2 + 2)?;
        let region = u16::from_le_bytes([pair[0], pair[1]]);
        (region != NONE).then_some(region)
    }

    fn region(&self, index: u16) -> Region<'_> {
        // Indices were checked against `regions` and `names` when the table was loaded.
        let (province, city) = self.regions[index as usize];
        Region {
            province: &self.names[province as usize],
            city: &self.names[city as usize],
        }
    }

    /// Every province in the table, once each (for validating region rules).
    pub fn provinces(&self) -> impl Iterator<Item = &str> {
        self.provinces.iter().map(|&p| &*self.names[p as usize])
    }

    /// Every (province, city) pair in the table, once each.
    pub fn cities(&self) -> impl Iterator<Item = (&str, &str)> {
        self.regions
            .iter()
            .map(|&(p, c)| (&*self.names[p as usize], &*self.names[c as usize]))
    }

    /// Prefixes the table resolves: mobile segments plus landline area codes.
    pub fn len(&self) -> usize {
        self.known_segments + self.area_codes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Mobile 7-digit segments with a region.
    pub fn segment_count(&self) -> usize {
        self.known_segments
    }

    /// Landline area codes with a region.
    pub fn area_code_count(&self) -> usize {
        self.area_codes
    }

    /// Where the data came from, as recorded by `data/build.py`
    /// (e.g. `phone 0.4.5 phone.dat 2312`), for logging at start-up.
    pub fn source(&self) -> &str {
        &self.source
    }
}
