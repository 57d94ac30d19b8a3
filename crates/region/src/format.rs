//! Reading the binary region table (`data/cn-regions.bin`, format v1).
//!
//! This module exists so that the only code that touches the table's bytes is one
//! small, defensive reader: every length, index and string is checked before it is
//! used, and the CRC-32 in the header catches damage that still looks well formed. It
//! never panics on bad input; it returns a [`RegionError`] instead. The layout is
//! written by `data/build.py`, whose doc comment is the format's specification:
//!
//! ```text
//! header   "SHRG" | u16 version = 1 | u16 0 | u32 CRC-32 of payload | u32 payload length
//! payload  u8+UTF-8 source
//!          u16 n, n × (u8 len, UTF-8)                  names
//!          u16 n, n × (u16 province, u16 city)         regions (name indices)
//!          u16 n, n × (u8 digits, u16 value, u16 region)   area codes, 010 = (3, 10)
//!          u32 base, u32 count, count × u16 region     segments base.., 0xFFFF = none
//! ```

use std::ops::Range;

use crate::RegionError;

pub(crate) const MAGIC: &[u8; 4] = b"SHRG";
pub(crate) const VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 16;
/// Region index meaning "no region" in the segment array and the area-code tables.
pub(crate) const NONE: u16 = 0xFFFF;

/// The table's contents, checked. Segments are left as a byte range of the input so
/// that the embedded table can borrow them instead of copying 1.4 MB.
pub(crate) struct Parsed {
    pub source: String,
    pub names: Vec<Box<str>>,
    /// (province, city) name indices.
    pub regions: Vec<(u16, u16)>,
    /// Region of `0` + two digits (010, 020..029), indexed by those two digits.
    pub landline3: Box<[u16; 100]>,
    /// Region of `0` + three digits (0755), indexed by those three digits.
    pub landline4: Box<[u16; 1000]>,
    pub area_codes: usize,
    pub segment_base: u32,
    /// Byte range of the `count × u16` segment array within the input.
    pub segments: Range<usize>,
    /// Segments that have a region.
    pub known_segments: usize,
}

/// Checks and reads a whole table.
pub(crate) fn parse(data: &[u8]) -> Result<Parsed, RegionError> {
    let header = data
        .get(..HEADER_LEN)
        .ok_or(RegionError::Truncated("header"))?;
    if &header[..4] != MAGIC {
        return Err(RegionError::BadMagic);
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != VERSION {
        return Err(RegionError::UnsupportedVersion(version));
    }
    let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    let expected = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as usize;
    let payload = &data[HEADER_LEN..];
    if payload.len() != expected {
        return Err(RegionError::Length {
            expected,
            actual: payload.len(),
        });
    }
    let actual = crc32(payload);
    if actual != crc {
        return Err(RegionError::Checksum {
            expected: crc,
            actual,
        });
    }

    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    let source = r.string("source")?.to_owned();

    let n_names = r.u16("name count")? as usize;
    let mut names = Vec::with_capacity(n_names);
    for _ in 0..n_names {
        let name = r.string("name")?;
        if name.is_empty() {
            return Err(RegionError::Corrupt("empty name"));
        }
        names.push(Box::from(name));
    }

    let n_regions = r.u16("region count")? as usize;
    if n_regions == NONE as usize {
        return Err(RegionError::Corrupt("too many regions"));
    }
    let mut regions = Vec::with_capacity(n_regions);
    for _ in 0..n_regions {
        let province = r.u16("region province")?;
        let city = r.u16("region city")?;
        if province as usize >= n_names || city as usize >= n_names {
            return Err(RegionError::Corrupt("region names a missing string"));
        }
        regions.push((province, city));
    }
    let mut sorted = regions.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(RegionError::Corrupt("duplicate region"));
    }

    let n_codes = r.u16("area code count")? as usize;
    let mut landline3 = Box::new([NONE; 100]);
    let mut landline4 = Box::new([NONE; 1000]);
    for _ in 0..n_codes {
        let digits = r.u8("area code digits")?;
        let value = r.u16("area code")? as usize;
        let region = r.u16("area code region")?;
        if region as usize >= n_regions {
            return Err(RegionError::Corrupt("area code names a missing region"));
        }
        // The digit after the leading 0 is never 0 (00 is the international prefix).
        let slot = match digits {
            3 if (10..100).contains(&value) => &mut landline3[value],
            4 if (100..1000).contains(&value) => &mut landline4[value],
            _ => return Err(RegionError::Corrupt("malformed area code")),
        };
        if *slot != NONE {
            return Err(RegionError::Corrupt("duplicate area code"));
        }
        *slot = region;
    }
    // Chinese area codes are prefix-free (010 vs 0755): a number must have one reading.
    for (value, &region) in landline4.iter().enumerate() {
        if region != NONE && landline3[value / 10] != NONE {
            return Err(RegionError::Corrupt("overlapping area codes"));
        }
    }

    let segment_base = r.u32("segment base")?;
    let count = r.u32("segment count")? as usize;
    // Segments are the first 7 digits of an 11-digit mobile number starting with 1.
    if !(1_000_000..=1_999_999).contains(&segment_base) || count > 2_000_000 - segment_base as usize
    {
        return Err(RegionError::Corrupt(
            "segment range outside 1000000..=1999999",
        ));
    }
    let start = HEADER_LEN + r.pos;
    let array = r.bytes(count * 2, "segments")?;
    if r.pos != payload.len() {
        return Err(RegionError::Corrupt("trailing bytes after segments"));
    }
    let mut known_segments = 0;
    for pair in array.chunks_exact(2) {
        let region = u16::from_le_bytes([pair[0], pair[1]]);
        if region != NONE {
            if region as usize >= n_regions {
                return Err(RegionError::Corrupt("segment names a missing region"));
            }
            known_segments += 1;
        }
    }

    Ok(Parsed {
        source,
        names,
        regions,
        landline3,
        landline4,
        area_codes: n_codes,
        segment_base,
        segments: start..start + count * 2,
        known_segments,
    })
}

/// Bounds-checked little-endian reads over the payload.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RegionError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(RegionError::Truncated(what))?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(RegionError::Truncated(what))?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RegionError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, RegionError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RegionError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &'static str) -> Result<&'a str, RegionError> {
        let len = self.u8(what)? as usize;
        std::str::from_utf8(self.bytes(len, what)?)
            .map_err(|_| RegionError::Corrupt("name is not UTF-8"))
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`), table-driven.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Writes format v1 the way `data/build.py` does, for tests that need small or
/// deliberately bad tables.
#[cfg(test)]
pub(crate) fn encode(
    names: &[&str],
    regions: &[(u16, u16)],
    codes: &[(u8, u16, u16)],
    base: u32,
    segments: &[u16],
) -> Vec<u8> {
    let mut p = Vec::new();
    let put_str = |p: &mut Vec<u8>, s: &str| {
        p.push(s.len() as u8);
        p.extend_from_slice(s.as_bytes());
    };
    put_str(&mut p, "test");
    p.extend_from_slice(&(names.len() as u16).to_le_bytes());
    for n in names {
        put_str(&mut p, n);
    }
    p.extend_from_slice(&(regions.len() as u16).to_le_bytes());
    for (a, b) in regions {
        p.extend_from_slice(&a.to_le_bytes());
        p.extend_from_slice(&b.to_le_bytes());
    }
    p.extend_from_slice(&(codes.len() as u16).to_le_bytes());
    for (d, v, r) in codes {
        p.push(*d);
        p.extend_from_slice(&v.to_le_bytes());
        p.extend_from_slice(&r.to_le_bytes());
    }
    p.extend_from_slice(&base.to_le_bytes());
    p.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    for s in segments {
        p.extend_from_slice(&s.to_le_bytes());
    }
    seal(&p)
}

/// Header + payload with a correct CRC and length.
#[cfg(test)]
pub(crate) fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegionTable;
    use proptest::prelude::*;

    fn small() -> Vec<u8> {
        encode(
            &["北京", "广东", "深圳"],
            &[(0, 0), (1, 2)],
            &[(3, 10, 0), (4, 755, 1)],
            1_380_000,
            &[0, NONE, 1],
        )
    }

    fn err(data: &[u8]) -> RegionError {
        match RegionTable::from_bytes(data) {
            Ok(_) => panic!("accepted a bad table"),
            Err(e) => e,
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn small_table_round_trips() {
        let t = RegionTable::from_bytes(&small()).unwrap();
        assert_eq!(t.segment_count(), 2);
        assert_eq!(t.area_code_count(), 2);
        assert_eq!(t.len(), 4);
        let r = t.lookup("13800000000").unwrap();
        assert_eq!((r.province, r.city), ("北京", "北京"));
        assert!(t.lookup("13800010000").is_none());
        let r = t.lookup("13800020000").unwrap();
        assert_eq!((r.province, r.city), ("广东", "深圳"));
        assert!(t.lookup("13800030000").is_none());
        assert!(t.lookup("13799990000").is_none());
        assert_eq!(t.lookup("01012345678").unwrap().city, "北京");
        assert_eq!(t.lookup("075512345678").unwrap().city, "深圳");
        assert_eq!(t.provinces().collect::<Vec<_>>(), ["北京", "广东"]);
        assert_eq!(
            t.cities().collect::<Vec<_>>(),
            [("北京", "北京"), ("广东", "深圳")]
        );
        assert_eq!(t.source(), "test");
    }

    #[test]
    fn structural_errors_are_reported() {
        let names = &["北京", "广东", "深圳"][..];
        let regions = &[(0, 0), (1, 2)][..];
        let codes = &[(3, 10, 0), (4, 755, 1)][..];
        let c = |e: RegionError| match e {
            RegionError::Corrupt(m) => m,
            other => panic!("expected Corrupt, got {other:?}"),
        };
        assert_eq!(
            c(err(&encode(names, &[(0, 3)], &[], 1_380_000, &[]))),
            "region names a missing string"
        );
        assert_eq!(
            c(err(&encode(names, &[(0, 0), (0, 0)], &[], 1_380_000, &[]))),
            "duplicate region"
        );
        assert_eq!(
            c(err(&encode(names, regions, &[(3, 10, 2)], 1_380_000, &[]))),
            "area code names a missing region"
        );
        assert_eq!(
            c(err(&encode(names, regions, &[(3, 5, 0)], 1_380_000, &[]))),
            "malformed area code"
        );
        assert_eq!(
            c(err(&encode(names, regions, &[(5, 755, 0)], 1_380_000, &[]))),
            "malformed area code"
        );
        assert_eq!(
            c(err(&encode(
                names,
                regions,
                &[(4, 1000, 0)],
                1_380_000,
                &[]
            ))),
            "malformed area code"
        );
        assert_eq!(
            c(err(&encode(
                names,
                regions,
                &[(3, 10, 0), (3, 10, 1)],
                1_380_000,
                &[]
            ))),
            "duplicate area code"
        );
        assert_eq!(
            c(err(&encode(
                names,
                regions,
                &[(3, 10, 0), (4, 101, 1)],
                1_380_000,
                &[]
            ))),
            "overlapping area codes"
        );
        assert_eq!(
            c(err(&encode(names, regions, codes, 1_380_000, &[2]))),
            "segment names a missing region"
        );
        assert_eq!(
            c(err(&encode(names, regions, codes, 999_999, &[]))),
            "segment range outside 1000000..=1999999"
        );
        assert_eq!(
            c(err(&encode(names, regions, codes, 1_999_999, &[0, 0]))),
            "segment range outside 1000000..=1999999"
        );
        assert_eq!(
            c(err(&encode(&["北京", ""], regions, codes, 1_380_000, &[]))),
            "empty name"
        );

        // Bad UTF-8 in a name, with a valid checksum.
        let mut bad = small();
        let at = bad.windows(6).position(|w| w == "北京".as_bytes()).unwrap();
        bad[at] = 0xFF;
        let payload = bad[HEADER_LEN..].to_vec();
        assert_eq!(c(err(&seal(&payload))), "name is not UTF-8");

        // Trailing bytes inside the checksummed payload.
        let mut payload = small()[HEADER_LEN..].to_vec();
        payload.push(0);
        assert_eq!(c(err(&seal(&payload))), "trailing bytes after segments");

        // A payload cut short but resealed: the reader runs out, it does not panic.
        let payload = small()[HEADER_LEN..].to_vec();
        for n in 0..payload.len() {
            assert!(
                RegionTable::from_bytes(&seal(&payload[..n])).is_err(),
                "cut at {n}"
            );
        }
    }

    #[test]
    fn header_errors_are_reported() {
        let good = small();
        assert!(matches!(err(&[]), RegionError::Truncated(_)));
        assert!(matches!(
            err(&good[..HEADER_LEN - 1]),
            RegionError::Truncated(_)
        ));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(err(&bad), RegionError::BadMagic);
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(err(&bad), RegionError::UnsupportedVersion(2));
        assert!(matches!(
            err(&good[..good.len() - 1]),
            RegionError::Length { .. }
        ));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(err(&longer), RegionError::Length { .. }));
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(err(&bad), RegionError::Checksum { .. }));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RegionTable::from_bytes(&data);
        }

        #[test]
        fn arbitrary_bytes_behind_a_valid_header_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RegionTable::from_bytes(&seal(&payload));
        }

        /// Damage that the checksum cannot see (resealed) must still be caught or be
        /// harmless: no panic, and any table that loads answers lookups safely.
        #[test]
        fn resealed_mutations_never_panic(
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut payload = small()[HEADER_LEN..].to_vec();
            for (at, byte) in edits {
                let i = at.index(payload.len());
                payload[i] = byte;
            }
            let keep = payload.len() - cut.index(4);
            if let Ok(t) = RegionTable::from_bytes(&seal(&payload[..keep])) {
                for n in ["13800000000", "13800020000", "01012345678", "075512345678", "02112345678"] {
                    let _ = t.lookup(n);
                }
                let _ = t.provinces().count() + t.cities().count() + t.len();
            }
        }
    }
}
