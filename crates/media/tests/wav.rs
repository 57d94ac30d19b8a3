//! WAV files as enterprises upload them (generated here: every rate, channel count and
//! encoding the reader accepts) come out as 8 kHz mono of the right length and pitch,
//! and recordings cut off by a crash stay readable.

use std::f64::consts::PI;
use std::io::Cursor;
use std::time::Duration;

use sihai_media::{
    DEFAULT_MAX_WAV_BYTES, Law, Prompt, StereoAudio, WavError, WavRecorder, read_wav,
    read_wav_stereo,
};

const PCM: u16 = 1;
const ALAW: u16 = 6;
const ULAW: u16 = 7;
const EXTENSIBLE: u16 = 0xFFFE;

/// A WAV file: `fmt ` (plain or extensible), a `LIST` chunk of odd size to skip, then
/// `data`.
fn wav_file(format_tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block_align = channels * bits / 8;
    let mut format = Vec::new();
    format.extend_from_slice(&format_tag.to_le_bytes());
    format.extend_from_slice(&channels.to_le_bytes());
    format.extend_from_slice(&rate.to_le_bytes());
    format.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    format.extend_from_slice(&block_align.to_le_bytes());
    format.extend_from_slice(&bits.to_le_bytes());
    if format_tag == EXTENSIBLE {
        format.extend_from_slice(&22u16.to_le_bytes());
        format.extend_from_slice(&bits.to_le_bytes());
        format.extend_from_slice(&(if channels == 2 { 3u32 } else { 4u32 }).to_le_bytes());
        // KSDATAFORMAT_SUBTYPE_PCM.
        format.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ]);
    }
    let mut body = b"WAVE".to_vec();
    for (id, chunk) in [
        (b"fmt ", &format[..]),
        (b"LIST", &b"INFOICMT\x03\x00\x00\x00hi\x00"[..]),
        (b"data", data),
    ] {
        body.extend_from_slice(id);
        body.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        body.extend_from_slice(chunk);
        if chunk.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&body);
    file
}

fn sine(frequency: f64, rate: u32, seconds: f64, amplitude: f64) -> Vec<i16> {
    let count = (f64::from(rate) * seconds).round() as usize;
    (0..count)
        .map(|n| {
            (amplitude * (2.0 * PI * frequency * n as f64 / f64::from(rate)).sin()).round() as i16
        })
        .collect()
}

fn pcm16(samples: &[i16]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|sample| sample.to_le_bytes())
        .collect()
}

fn interleave(left: &[i16], right: &[i16]) -> Vec<i16> {
    left.iter().zip(right).flat_map(|(&l, &r)| [l, r]).collect()
}

fn zero_crossings(samples: &[i16]) -> usize {
    let signs: Vec<i16> = samples
        .iter()
        .map(|sample| sample.signum())
        .filter(|&sign| sign != 0)
        .collect();
    signs.windows(2).filter(|pair| pair[0] != pair[1]).count()
}

/// RMS of the middle half (away from the filter's fade in and out).
fn middle_rms(samples: &[i16]) -> f64 {
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    (middle
        .iter()
        .map(|&sample| f64::from(sample).powi(2))
        .sum::<f64>()
        / middle.len() as f64)
        .sqrt()
}

fn assert_length_close(actual: usize, input_len: usize, rate: u32) {
    let expected = input_len as f64 * 8000.0 / f64::from(rate);
    assert!(
        (actual as f64 - expected).abs() <= 1.0,
        "{rate} Hz: {actual} samples, expected {expected}"
    );
}

#[test]
fn pcm16_at_common_rates_mono_and_stereo() {
    for rate in [8000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000] {
        let tone = sine(1000.0, rate, 0.75, 8000.0);
        for channels in [1u16, 2] {
            let samples = if channels == 2 {
                interleave(&tone, &tone)
            } else {
                tone.clone()
            };
            let file = wav_file(PCM, channels, rate, 16, &pcm16(&samples));
            let audio = read_wav(&file).unwrap();
            assert_length_close(audio.samples.len(), tone.len(), rate);
            // 0.75 s of 1 kHz: 1500 crossings.
            let crossings = zero_crossings(&audio.samples);
            assert!(
                (1495..=1502).contains(&crossings),
                "{rate} Hz, {channels} ch: {crossings}"
            );
            let gain = middle_rms(&audio.samples) / middle_rms(&tone);
            assert!(
                (gain - 1.0).abs() < 0.01,
                "{rate} Hz, {channels} ch: gain {gain}"
            );
        }
    }
}

#[test]
fn odd_lengths_resample_to_within_one_sample() {
    for (rate, len) in [
        (44_100, 1),
        (44_100, 5),
        (44_100, 44_099),
        (48_000, 7),
        (22_050, 12_345),
        (16_000, 1601),
    ] {
        let file = wav_file(PCM, 1, rate, 16, &pcm16(&vec![100; len]));
        assert_length_close(read_wav(&file).unwrap().samples.len(), len, rate);
    }
}

#[test]
fn one_kilohertz_at_48k_stays_one_kilohertz() {
    let file = wav_file(
        PCM,
        1,
        48_000,
        16,
        &pcm16(&sine(1000.0, 48_000, 1.0, 10_000.0)),
    );
    let audio = read_wav(&file).unwrap();
    assert_eq!(audio.samples.len(), 8000);
    assert_eq!(audio.duration(), Duration::from_secs(1));
    let crossings = zero_crossings(&audio.samples[2000..6000]);
    assert!(
        (998..=1000).contains(&crossings),
        "{crossings} crossings in 0.5 s"
    );
}

#[test]
fn six_kilohertz_at_48k_is_filtered_out() {
    let input = sine(6000.0, 48_000, 1.0, 10_000.0);
    let audio = read_wav(&wav_file(PCM, 1, 48_000, 16, &pcm16(&input))).unwrap();
    let attenuation = 20.0 * (middle_rms(&audio.samples).max(1e-3) / middle_rms(&input)).log10();
    assert!(attenuation < -30.0, "6 kHz only {attenuation} dB down");
    // Plain decimation (every 6th sample) would have left a loud 2 kHz alias.
    let decimated: Vec<i16> = input.iter().step_by(6).copied().collect();
    assert!(middle_rms(&decimated) > 5000.0);
}

#[test]
fn g711_files_decode_with_the_codec() {
    let tone = sine(440.0, 8000, 0.1, 12_000.0);
    for (tag, law) in [(ALAW, Law::Alaw), (ULAW, Law::Ulaw)] {
        let encoded: Vec<u8> = tone.iter().map(|&sample| law.encode(sample)).collect();
        let audio = read_wav(&wav_file(tag, 1, 8000, 8, &encoded)).unwrap();
        let expected: Vec<i16> = encoded.iter().map(|&byte| law.decode(byte)).collect();
        assert_eq!(audio.samples, expected, "{law:?}");
    }
    // A-law stereo at 16 kHz: mixed down and resampled.
    let tone16 = sine(440.0, 16_000, 0.5, 12_000.0);
    let encoded: Vec<u8> = interleave(&tone16, &tone16)
        .iter()
        .map(|&sample| Law::Alaw.encode(sample))
        .collect();
    let audio = read_wav(&wav_file(ALAW, 2, 16_000, 8, &encoded)).unwrap();
    assert_eq!(audio.samples.len(), 4000);
    assert!((middle_rms(&audio.samples) / middle_rms(&tone16) - 1.0).abs() < 0.02);
}

#[test]
fn eight_bit_and_extensible_files() {
    let tone = sine(500.0, 22_050, 0.5, 100.0);
    let unsigned: Vec<u8> = interleave(&tone, &tone)
        .iter()
        .map(|&sample| (sample + 128) as u8)
        .collect();
    let audio = read_wav(&wav_file(PCM, 2, 22_050, 8, &unsigned)).unwrap();
    assert_length_close(audio.samples.len(), tone.len(), 22_050);
    let rms = middle_rms(&audio.samples);
    assert!(
        (rms / (100.0 * 256.0 / 2f64.sqrt()) - 1.0).abs() < 0.02,
        "{rms}"
    );

    let tone = sine(1000.0, 44_100, 0.5, 8000.0);
    let file = wav_file(EXTENSIBLE, 2, 44_100, 16, &pcm16(&interleave(&tone, &tone)));
    let audio = read_wav(&file).unwrap();
    assert_length_close(audio.samples.len(), tone.len(), 44_100);
    assert!((zero_crossings(&audio.samples) as i64 - 1000).abs() <= 2);
}

#[test]
fn stereo_mixdown_averages_the_channels() {
    let tone = sine(1000.0, 8000, 0.1, 8000.0);
    let inverted: Vec<i16> = tone.iter().map(|&sample| -sample).collect();
    let cancelled = read_wav(&wav_file(
        PCM,
        2,
        8000,
        16,
        &pcm16(&interleave(&tone, &inverted)),
    ))
    .unwrap();
    assert!(cancelled.samples.iter().all(|&sample| sample == 0));
    let one_side = read_wav(&wav_file(
        PCM,
        2,
        8000,
        16,
        &pcm16(&interleave(&tone, &vec![0; tone.len()])),
    ))
    .unwrap();
    assert!(
        one_side
            .samples
            .iter()
            .zip(&tone)
            .all(|(&mixed, &original)| mixed == original / 2)
    );
}

#[test]
fn oversized_and_truncated_files_are_rejected() {
    let file = wav_file(PCM, 1, 8000, 16, &pcm16(&[0; 1000]));
    assert_eq!(
        sihai_media::read_wav_limited(&file, 1000),
        Err(WavError::TooLarge {
            len: file.len(),
            max: 1000
        })
    );
    let cut = &file[..file.len() - 10];
    assert!(matches!(read_wav(cut), Err(WavError::Truncated { .. })));
}

#[test]
fn prompt_from_a_44k_file() {
    let tone = sine(1000.0, 44_100, 1.01, 8000.0);
    let audio = read_wav(&wav_file(PCM, 1, 44_100, 16, &pcm16(&tone))).unwrap();
    let prompt = Prompt::from_audio(&audio);
    // 8080 samples: 50 full frames and a padded one.
    assert_eq!(audio.samples.len(), 8080);
    assert_eq!(prompt.frames(), 51);
    assert_eq!(prompt.duration(), Duration::from_millis(1020));
    let last = prompt.frame(Law::Alaw, 50).unwrap();
    assert!(last[80..].iter().all(|&byte| byte == Law::Alaw.silence()));
    assert!(prompt.frame(Law::Ulaw, 51).is_none());
}

fn record(recorder: &mut WavRecorder<impl std::io::Write + std::io::Seek>, frames: usize) {
    for frame in 0..frames {
        let left = [frame as i16; 160];
        let right = [-(frame as i16); 160];
        recorder.write_frame(&left, &right).unwrap();
    }
}

#[test]
fn a_recording_cut_off_by_a_crash_is_readable() {
    // The call should last 5 s; the process dies after 4.5 s and part of a frame.
    let mut file = Cursor::new(Vec::new());
    let mut recorder = WavRecorder::new(&mut file).unwrap();
    record(&mut recorder, 225);
    recorder.write_frame(&[1; 80], &[2; 80]).unwrap();
    assert_eq!(recorder.duration(), Duration::from_millis(4510));
    drop(recorder);
    let bytes = file.into_inner();
    assert_eq!(bytes.len(), 44 + (225 * 160 + 80) * 4);

    // The header was last updated at 4 s: the reader sees exactly that.
    let stereo = read_wav_stereo(&bytes, usize::MAX).unwrap();
    assert_eq!(stereo.left.len(), 32_000);
    assert_eq!(stereo.right.len(), 32_000);
    assert_eq!(stereo.left[31_999], 199);
    assert_eq!(stereo.right[31_999], -199);
    assert_eq!(read_wav(&bytes).unwrap().samples.len(), 32_000);
}

#[test]
fn a_finished_recording_has_everything() {
    let mut recorder = WavRecorder::new(Cursor::new(Vec::new())).unwrap();
    record(&mut recorder, 250);
    recorder.write_frame(&[1; 80], &[2; 80]).unwrap();
    let bytes = recorder.finish().unwrap().into_inner();
    let stereo = read_wav_stereo(&bytes, usize::MAX).unwrap();
    assert_eq!(stereo.left.len(), 40_080);
    assert_eq!(&stereo.left[40_000..], &[1; 80]);
    assert_eq!(&stereo.right[40_000..], &[2; 80]);
    assert_eq!(stereo.right[0], 0);
    assert_eq!(stereo.right[39_999], -249);
}

#[test]
fn a_recording_file_on_disk_survives_a_crash() {
    let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut recorder = WavRecorder::new(std::io::BufWriter::new(file)).unwrap();
        record(&mut recorder, 130);
        // Dropped without finish: the BufWriter flushes what it holds, as the kernel
        // would keep what was written before the process died.
    }
    let bytes = std::fs::read(&path).unwrap();
    let stereo: StereoAudio = read_wav_stereo(&bytes, DEFAULT_MAX_WAV_BYTES).unwrap();
    assert_eq!(stereo.left.len(), 16_000);
    assert_eq!(stereo.left[15_999], 99);
}
