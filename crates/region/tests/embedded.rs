//! Checks the table sihai ships: well-known numbers resolve to the right place, the
//! Rust reader agrees with `data/build.py`'s own decoder on a sample of the data
//! (`data/cn-regions-check.tsv`), odd input is refused without panicking, and damaged
//! copies of the real file are rejected.

use std::collections::HashSet;
use std::time::Instant;

use proptest::prelude::*;
use sihai_region::{Region, RegionError, RegionTable};

const BIN: &[u8] = include_bytes!("../data/cn-regions.bin");
const CHECK: &str = include_str!("../data/cn-regions-check.tsv");

fn at(number: &str) -> Option<(&'static str, &'static str)> {
    RegionTable::embedded()
        .lookup(number)
        .map(|r| (r.province, r.city))
}

#[test]
fn well_known_mobile_segments() {
    // 1380013 is the segment of the classic test number 13800138000.
    assert_eq!(at("13800138000"), Some(("北京", "北京")));
    assert_eq!(at("13800130000"), Some(("北京", "北京")));
    assert_eq!(at("15211471234"), Some(("湖南", "衡阳"))); // the phone package's own test
    assert_eq!(at("13912341234"), Some(("江苏", "常州")));
    // 2019-and-later ranges (19x, 16x) are in the data.
    assert_eq!(at("19912341234"), Some(("河北", "唐山")));
    assert_eq!(at("19907551234"), Some(("海南", "海口")));
    assert_eq!(at("16600001234"), Some(("北京", "北京")));
    assert_eq!(at("19212341234"), Some(("重庆", "重庆")));
    assert_eq!(at("19512341234"), Some(("上海", "上海")));
}

#[test]
fn well_known_area_codes() {
    assert_eq!(at("01012345678"), Some(("北京", "北京")));
    assert_eq!(at("02112345678"), Some(("上海", "上海")));
    assert_eq!(at("02212345678"), Some(("天津", "天津")));
    assert_eq!(at("02312345678"), Some(("重庆", "重庆")));
    assert_eq!(at("02012345678"), Some(("广东", "广州")));
    assert_eq!(at("075512345678"), Some(("广东", "深圳")));
    assert_eq!(at("07551234567"), Some(("广东", "深圳"))); // 7-digit subscriber
    assert_eq!(at("076912345678"), Some(("广东", "东莞")));
    assert_eq!(at("057112345678"), Some(("浙江", "杭州")));
    assert_eq!(at("047112345678"), Some(("内蒙古", "呼和浩特")));
    assert_eq!(at("099112345678"), Some(("新疆", "乌鲁木齐")));
    assert_eq!(at("089812345678"), Some(("海南", "海口")));
    assert_eq!(at("089112345678"), Some(("西藏", "拉萨")));
    // phone.dat writes 锡林郭勒's code as "00479"; build.py corrects it.
    assert_eq!(at("047912345678"), Some(("内蒙古", "锡林郭勒")));
}

#[test]
fn names_are_normalised() {
    let t = RegionTable::embedded();
    let suffixes = ["省", "自治区", "特别行政区"];
    for p in t.provinces() {
        assert!(
            !suffixes.iter().any(|s| p.ends_with(s)) && !p.ends_with('市'),
            "{p}"
        );
    }
    for (p, c) in t.cities() {
        assert!(!c.ends_with('市') && !c.ends_with("自治州"), "{p}/{c}");
        if ["北京", "上海", "天津", "重庆"].contains(&p) {
            assert_eq!(p, c, "a municipality's city is itself");
        }
    }
    // Districts and county towns fold into their municipality or prefecture.
    assert!(
        !t.cities()
            .any(|(_, c)| ["万州", "涪陵", "海拉尔", "锡林郭勒盟", "思茅"].contains(&c))
    );
}

#[test]
fn provinces_and_cities_are_complete_and_distinct() {
    let t = RegionTable::embedded();
    let provinces: Vec<&str> = t.provinces().collect();
    assert_eq!(
        provinces.len(),
        provinces.iter().collect::<HashSet<_>>().len()
    );
    // The 31 mainland provincial divisions (no 香港/澳门/台湾 in the data).
    assert_eq!(provinces.len(), 31, "{provinces:?}");
    for p in [
        "北京",
        "上海",
        "广东",
        "内蒙古",
        "广西",
        "新疆",
        "西藏",
        "宁夏",
        "黑龙江",
    ] {
        assert!(provinces.contains(&p), "{p}");
    }
    let cities: Vec<(&str, &str)> = t.cities().collect();
    assert_eq!(cities.len(), cities.iter().collect::<HashSet<_>>().len());
    assert!(cities.len() > 300, "{}", cities.len());
    assert!(cities.contains(&("广东", "深圳")) && cities.contains(&("内蒙古", "呼和浩特")));
    for (p, _) in &cities {
        assert!(provinces.contains(p));
    }
}

#[test]
fn table_size() {
    let t = RegionTable::embedded();
    assert!(t.segment_count() >= 300_000, "{}", t.segment_count());
    assert!(t.area_code_count() >= 300, "{}", t.area_code_count());
    assert_eq!(t.len(), t.segment_count() + t.area_code_count());
    assert!(!t.is_empty());
    assert!(t.source().starts_with("phone "), "{}", t.source());
    println!(
        "{}: {} segments, {} area codes, {} cities in {} provinces, {} bytes",
        t.source(),
        t.segment_count(),
        t.area_code_count(),
        t.cities().count(),
        t.provinces().count(),
        BIN.len()
    );
}

/// Every line of the check file was decoded from the .bin by build.py's own reader.
#[test]
fn agrees_with_the_converter() {
    let t = RegionTable::embedded();
    let mut lines = 0;
    for line in CHECK.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split('\t');
        let (number, province, city) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let expected = (!province.is_empty()).then_some(Region { province, city });
        assert_eq!(t.lookup(number), expected, "{number}");
        lines += 1;
    }
    assert!(lines > 1000, "{lines}");
}

#[test]
fn unknown_prefixes() {
    assert_eq!(at("19900001234"), None); // 1990000 is not allocated in the data
    assert_eq!(at("12345678901"), None); // no 12x mobile segments
    assert_eq!(at("10012345678"), None);
    assert_eq!(at("03012345678"), None); // 030 is not an area code
    assert_eq!(at("040012345678"), None);
    assert_eq!(at("099912345678").map(|r| r.0), Some("新疆"));
    assert_eq!(at("099812345678").map(|r| r.0), Some("新疆"));
    assert_eq!(at("000012345678"), None);
}

#[test]
fn only_normalised_national_numbers() {
    for n in [
        "",
        "1",
        "138",
        "1380013800",   // 10 digits
        "138001380000", // 12 digits
        "+8613800138000",
        "8613800138000",
        "013800138000", // trunk prefix + mobile: normalising it is the caller's job
        "4008001234",
        "95555",
        "138-0013-8000",
        " 13800138000",
        "13800138000 ",
        "１３８００１３８０００", // full-width digits
        "0101234567",             // 010 + 7 digits: accepted below, this is 10 digits
        "010123456",              // 010 + 6
        "010123456789",           // 010 + 9
        "0755123456",             // 0755 + 6
        "0755123456789",          // 0755 + 9
        "0",
        "00",
        "0086755",
        "01",
    ] {
        let expected_some = n == "0101234567";
        assert_eq!(at(n).is_some(), expected_some, "{n:?}");
    }
}

#[test]
fn from_bytes_equals_embedded() {
    let copy = RegionTable::from_bytes(BIN).unwrap();
    let t = RegionTable::embedded();
    assert_eq!(copy.len(), t.len());
    assert!(copy.cities().eq(t.cities()));
    for n in [
        "13800138000",
        "19912341234",
        "075512345678",
        "01012345678",
        "19900001234",
    ] {
        assert_eq!(copy.lookup(n), t.lookup(n));
    }
}

#[test]
fn truncated_real_table_is_rejected() {
    // Every cut in the header and structured part, then a spread over the segments.
    let cuts = (0..4096)
        .chain((4096..BIN.len()).step_by(7919))
        .chain([BIN.len() - 1]);
    for n in cuts {
        assert!(
            RegionTable::from_bytes(&BIN[..n]).is_err(),
            "accepted the first {n} bytes"
        );
    }
}

#[test]
fn corrupt_real_table_is_rejected() {
    let mut data = BIN.to_vec();
    for i in (0..data.len())
        .step_by(65_521)
        .chain([0, 5, 9, 13, 16, 100, data.len() - 1])
    {
        for flip in [0x01, 0x80] {
            data[i] ^= flip;
            assert!(
                RegionTable::from_bytes(&data).is_err(),
                "accepted a flip at byte {i}"
            );
            data[i] ^= flip;
        }
    }
    data.push(0);
    assert!(matches!(
        RegionTable::from_bytes(&data),
        Err(RegionError::Length { .. })
    ));
}

/// Loading cost. A debug build is several times slower than release, so the bound is
/// only a guard against something pathological; the release figure is printed by
/// `cargo test --release -p sihai-region -- --nocapture load_time`.
#[test]
fn load_time() {
    let start = Instant::now();
    let e = RegionTable::embedded();
    let embedded = start.elapsed();
    assert!(!e.is_empty());
    // Best of a few runs: the machine is shared, and the first run also faults in pages.
    let copied = (0..5)
        .map(|_| {
            let start = Instant::now();
            let t = RegionTable::from_bytes(BIN).unwrap();
            let elapsed = start.elapsed();
            assert!(!t.is_empty());
            elapsed
        })
        .min()
        .unwrap();
    println!(
        "load: embedded() first call {embedded:?} (0 if another test loaded it first), from_bytes best of 5 {copied:?}"
    );
    assert!(copied.as_millis() < 2_000, "{copied:?}");
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,20}") {
        let _ = RegionTable::embedded().lookup(&s);
    }

    #[test]
    fn arbitrary_digit_strings_never_panic(s in "[0-9]{0,14}") {
        if let Some(r) = RegionTable::embedded().lookup(&s) {
            prop_assert!(s.len() >= 10 && (s.starts_with('0') || s.len() == 11));
            prop_assert!(RegionTable::embedded().cities().any(|c| c == (r.province, r.city)));
        }
    }

    #[test]
    fn mobile_numbers_resolve_by_segment(seg in 1_300_000u32..2_000_000, rest in 0u32..10_000, other in 0u32..10_000) {
        let t = RegionTable::embedded();
        prop_assert_eq!(t.lookup(&format!("{seg}{rest:04}")), t.lookup(&format!("{seg}{other:04}")));
    }
}
