//! WAV files in and out: enterprise ringback and menu prompts come in as WAV files of
//! any common kind, and call recordings go out as stereo WAV (caller left, callee
//! right).
//!
//! Reading takes the whole file as bytes (the daemon reads it; sizes come from the
//! config) and produces 8 kHz mono linear audio, ready for [`crate::Prompt`]. Accepted:
//! RIFF/WAVE, little-endian, with a `fmt ` chunk of PCM (8-bit unsigned, 16, 24 or
//! 32-bit signed), IEEE float 32-bit, A-law or µ-law, plain or as
//! `WAVE_FORMAT_EXTENSIBLE`; mono or stereo (mixed down); any rate from 4 kHz to
//! 384 kHz (resampled by [`crate::resample`]). Unknown chunks (`LIST`, `fact`, `cue `...)
//! are skipped, odd-sized chunks are followed by their pad byte, and a size field that
//! points past the end of the file or of its parent is an error naming the chunk.
//! Parsing stops once it has the format and the audio, so whatever follows the `data`
//! chunk (metadata, or the tail of a recording whose header was not yet updated) is
//! never looked at.
//!
//! [`WavRecorder`] writes through any `Write + Seek` and keeps the header's sizes at
//! most [`WavRecorder::update_every`] samples behind the audio, so a recording cut off
//! by a crash is still a valid file.

use std::io::{self, Seek, SeekFrom, Write};
use std::time::Duration;

use thiserror::Error;

use crate::g711::{alaw_decode, ulaw_decode};
use crate::resample::resample;
use crate::tone::SAMPLE_RATE;

/// Largest WAV file [`read_wav`] accepts: 50 MiB, about 55 minutes of 8 kHz 16-bit
/// mono, far more than any prompt.
pub const DEFAULT_MAX_WAV_BYTES: usize = 50 * 1024 * 1024;

/// Lowest sample rate accepted: below it a "WAV" is more likely corrupt than speech,
/// and upsampling it to 8 kHz would multiply its size in memory.
const MIN_SAMPLE_RATE: u32 = 4000;
/// Highest sample rate accepted (studio rates go up to 384 kHz).
const MAX_SAMPLE_RATE: u32 = 384_000;

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Bytes 2..16 of every `KSDATAFORMAT_SUBTYPE_*` GUID whose first two bytes are a
/// plain format tag (`xxxxxxxx-0000-0010-8000-00aa00389b71`).
const EXTENSIBLE_GUID_TAIL: [u8; 14] = [0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71];

/// Why a WAV file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WavError {
    /// The file is larger than the configured limit.
    #[error("WAV file of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the file.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The file does not start with a RIFF/WAVE header.
    #[error("not a WAV file: no RIFF/WAVE header")]
    NotWave,
    /// A size field points past the end of the file (or of the RIFF chunk).
    #[error(
        "WAV file truncated: chunk `{chunk}` declares {declared} bytes but only {available} follow"
    )]
    Truncated {
        /// The chunk whose size is wrong (`RIFF` for the whole file).
        chunk: String,
        /// The size it declares.
        declared: u64,
        /// The bytes that actually follow its header.
        available: u64,
    },
    /// No `fmt ` chunk.
    #[error("WAV file has no `fmt ` chunk")]
    MissingFormat,
    /// No `data` chunk.
    #[error("WAV file has no `data` chunk")]
    MissingData,
    /// The `fmt ` chunk is shorter than its format requires.
    #[error(
        "WAV `fmt ` chunk of {len} bytes is too short (format {format_tag:#06x} needs {needed})"
    )]
    FormatTooShort {
        /// Length of the chunk.
        len: usize,
        /// The format tag, if the chunk was long enough to hold it.
        format_tag: u16,
        /// The length required.
        needed: usize,
    },
    /// An encoding other than those listed in the module documentation.
    #[error(
        "unsupported WAV encoding: format tag {format_tag:#06x} with {bits_per_sample} bits per sample"
    )]
    UnsupportedEncoding {
        /// The format tag (for `WAVE_FORMAT_EXTENSIBLE`, the sub-format's).
        format_tag: u16,
        /// Bits per sample.
        bits_per_sample: u16,
    },
    /// Neither mono nor stereo.
    #[error("unsupported WAV channel count {0}: only mono and stereo are accepted")]
    UnsupportedChannels(u16),
    /// A sample rate outside 4 kHz..=384 kHz.
    #[error("unsupported WAV sample rate {0} Hz")]
    UnsupportedSampleRate(u32),
    /// The frame size disagrees with the channels and sample size.
    #[error(
        "WAV block align {block_align} does not match {channels} channel(s) of {bits_per_sample} bits"
    )]
    BadBlockAlign {
        /// The declared frame size.
        block_align: u16,
        /// Channels declared.
        channels: u16,
        /// Bits per sample declared.
        bits_per_sample: u16,
    },
    /// A stereo reader was given a file with another channel count.
    #[error("expected a stereo WAV file, found {0} channel(s)")]
    NotStereo(u16),
}

/// How the samples of a WAV file are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WavEncoding {
    /// 8-bit unsigned PCM (128 is silence).
    Pcm8,
    /// 16-bit signed little-endian PCM.
    Pcm16,
    /// 24-bit signed little-endian PCM.
    Pcm24,
    /// 32-bit signed little-endian PCM.
    Pcm32,
    /// 32-bit IEEE float, full scale ±1.0.
    Float32,
    /// G.711 A-law.
    Alaw,
    /// G.711 µ-law.
    Ulaw,
}

impl WavEncoding {
    /// Bytes per sample of one channel.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            WavEncoding::Pcm8 | WavEncoding::Alaw | WavEncoding::Ulaw => 1,
            WavEncoding::Pcm16 => 2,
            WavEncoding::Pcm24 => 3,
            WavEncoding::Pcm32 | WavEncoding::Float32 => 4,
        }
    }

    fn decode(self, bytes: &[u8]) -> i16 {
        match (self, bytes) {
            (WavEncoding::Pcm8, &[byte]) => (i16::from(byte) - 128) << 8,
            (WavEncoding::Alaw, &[byte]) => alaw_decode(byte),
            (WavEncoding::Ulaw, &[byte]) => ulaw_decode(byte),
            (WavEncoding::Pcm16, &[low, high]) => i16::from_le_bytes([low, high]),
            // Wider PCM keeps its 16 most significant bits.
            (WavEncoding::Pcm24, &[_, mid, high]) => i16::from_le_bytes([mid, high]),
            (WavEncoding::Pcm32, &[_, _, mid, high]) => i16::from_le_bytes([mid, high]),
            (WavEncoding::Float32, &[a, b, c, d]) => {
                let value = f32::from_le_bytes([a, b, c, d]);
                // NaN becomes silence; the cast saturates out-of-range values.
                if value.is_nan() {
                    0
                } else {
                    (value.clamp(-1.0, 1.0) * 32767.0).round() as i16
                }
            }
            _ => 0,
        }
    }
}

/// The audio format of a WAV file, from its `fmt ` chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WavFormat {
    /// Sample encoding.
    pub encoding: WavEncoding,
    /// 1 or 2.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
}

/// A WAV file's audio decoded to linear 16-bit samples at its own rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavPcm {
    /// The file's format.
    pub format: WavFormat,
    /// Samples interleaved by channel (left, right, left... for stereo).
    pub samples: Vec<i16>,
}

/// 8 kHz mono linear audio.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audio {
    /// The samples, 8000 per second.
    pub samples: Vec<i16>,
}

impl Audio {
    /// Length of the audio.
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples.len() as u64)
    }
}

/// 8 kHz stereo linear audio, one vector per channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StereoAudio {
    /// Left channel (the caller, in recordings).
    pub left: Vec<i16>,
    /// Right channel (the callee, in recordings).
    pub right: Vec<i16>,
}

fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_micros(samples * 1_000_000 / u64::from(SAMPLE_RATE))
}

/// Reads a WAV file of at most [`DEFAULT_MAX_WAV_BYTES`] as 8 kHz mono audio.
pub fn read_wav(bytes: &[u8]) -> Result<Audio, WavError> {
    read_wav_limited(bytes, DEFAULT_MAX_WAV_BYTES)
}

/// Reads a WAV file of at most `max_bytes` as 8 kHz mono audio: stereo is mixed down
/// (the average of both channels), other rates are resampled.
pub fn read_wav_limited(bytes: &[u8], max_bytes: usize) -> Result<Audio, WavError> {
    let pcm = decode_wav(bytes, max_bytes)?;
    let mono: Vec<i16> = match pcm.format.channels {
        2 => pcm
            .samples
            .chunks_exact(2)
            .map(|pair| ((i32::from(pair[0]) + i32::from(pair[1])) / 2) as i16)
            .collect(),
        _ => pcm.samples,
    };
    Ok(Audio {
        samples: resample(&mono, pcm.format.sample_rate, SAMPLE_RATE),
    })
}

/// Reads a stereo WAV file of at most `max_bytes` (a call recording) as 8 kHz stereo
/// audio, keeping the channels apart.
pub fn read_wav_stereo(bytes: &[u8], max_bytes: usize) -> Result<StereoAudio, WavError> {
    let pcm = decode_wav(bytes, max_bytes)?;
    if pcm.format.channels != 2 {
        return Err(WavError::NotStereo(pcm.format.channels));
    }
    let (left, right): (Vec<i16>, Vec<i16>) = pcm
        .samples
        .chunks_exact(2)
        .map(|pair| (pair[0], pair[1]))
        .unzip();
    let rate = pcm.format.sample_rate;
    Ok(StereoAudio {
        left: resample(&left, rate, SAMPLE_RATE),
        right: resample(&right, rate, SAMPLE_RATE),
    })
}

/// Parses a WAV file of at most `max_bytes` and decodes its samples to linear 16-bit,
/// without changing rate or channels. A trailing partial frame is dropped.
pub fn decode_wav(bytes: &[u8], max_bytes: usize) -> Result<WavPcm, WavError> {
    if bytes.len() > max_bytes {
        return Err(WavError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let riff_size = u64::from(read_u32(bytes, 4));
    let available = bytes.len() as u64 - 8;
    if riff_size > available {
        return Err(WavError::Truncated {
            chunk: "RIFF".to_owned(),
            declared: riff_size,
            available,
        });
    }
    // Bytes after the RIFF chunk (some tools append junk) are ignored.
    let riff_end = 8 + riff_size as usize;

    let mut format = None;
    let mut data = None;
    let mut position = 12;
    while position + 8 <= riff_end && (format.is_none() || data.is_none()) {
        let id = &bytes[position..position + 4];
        let size = read_u32(bytes, position + 4) as usize;
        let body_start = position + 8;
        let available = riff_end - body_start;
        if size > available {
            return Err(WavError::Truncated {
                chunk: String::from_utf8_lossy(id).into_owned(),
                declared: size as u64,
                available: available as u64,
            });
        }
        let body = &bytes[body_start..body_start + size];
        match id {
            b"fmt " if format.is_none() => format = Some(parse_format(body)?),
            b"data" if data.is_none() => data = Some(body),
            _ => {}
        }
        // Chunks start on even offsets; a missing final pad byte is tolerated.
        position = body_start + size + (size & 1);
    }
    let format = format.ok_or(WavError::MissingFormat)?;
    let data = data.ok_or(WavError::MissingData)?;

    let sample_bytes = format.encoding.bytes_per_sample();
    let frame_bytes = sample_bytes * usize::from(format.channels);
    let whole_frames = data.len() / frame_bytes * frame_bytes;
    let samples = data[..whole_frames]
        .chunks_exact(sample_bytes)
        .map(|sample| format.encoding.decode(sample))
        .collect();
    Ok(WavPcm { format, samples })
}

fn parse_format(body: &[u8]) -> Result<WavFormat, WavError> {
    if body.len() < 16 {
        let format_tag = if body.len() >= 2 {
            read_u16(body, 0)
        } else {
            0
        };
        return Err(WavError::FormatTooShort {
            len: body.len(),
            format_tag,
            needed: 16,
        });
    }
    let mut format_tag = read_u16(body, 0);
    let channels = read_u16(body, 2);
    let sample_rate = read_u32(body, 4);
    let block_align = read_u16(body, 12);
    let bits_per_sample = read_u16(body, 14);
    if format_tag == WAVE_FORMAT_EXTENSIBLE {
        if body.len() < 40 {
            return Err(WavError::FormatTooShort {
                len: body.len(),
                format_tag,
                needed: 40,
            });
        }
        // The sub-format GUID at 24..40 starts with the plain format tag.
        if body[26..40] != EXTENSIBLE_GUID_TAIL {
            return Err(WavError::UnsupportedEncoding {
                format_tag,
                bits_per_sample,
            });
        }
        format_tag = read_u16(body, 24);
    }
    let encoding = match (format_tag, bits_per_sample) {
        (WAVE_FORMAT_PCM, 8) => WavEncoding::Pcm8,
        (WAVE_FORMAT_PCM, 16) => WavEncoding::Pcm16,
        (WAVE_FORMAT_PCM, 24) => WavEncoding::Pcm24,
        (WAVE_FORMAT_PCM, 32) => WavEncoding::Pcm32,
        (WAVE_FORMAT_IEEE_FLOAT, 32) => WavEncoding::Float32,
        (WAVE_FORMAT_ALAW, 8) => WavEncoding::Alaw,
        (WAVE_FORMAT_MULAW, 8) => WavEncoding::Ulaw,
        _ => {
            return Err(WavError::UnsupportedEncoding {
                format_tag,
                bits_per_sample,
            });
        }
    };
    if !(1..=2).contains(&channels) {
        return Err(WavError::UnsupportedChannels(channels));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(WavError::UnsupportedSampleRate(sample_rate));
    }
    if usize::from(block_align) != encoding.bytes_per_sample() * usize::from(channels) {
        return Err(WavError::BadBlockAlign {
            block_align,
            channels,
            bits_per_sample,
        });
    }
    Ok(WavFormat {
        encoding,
        channels,
        sample_rate,
    })
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Why a recording could not be written.
#[derive(Debug, Error)]
pub enum RecorderError {
    /// The underlying writer failed; the file's header still describes the audio up
    /// to the last update.
    #[error("writing the WAV recording failed: {0}")]
    Io(#[from] io::Error),
    /// The next frame would push the file past the 4 GiB a RIFF size field can
    /// describe (about 37 hours of 8 kHz stereo).
    #[error(
        "WAV recording full: {data_bytes} bytes of audio already, a RIFF file holds at most 4 GiB"
    )]
    TooLong {
        /// Audio bytes written so far.
        data_bytes: u32,
    },
    /// An earlier write failed part-way, so the file's layout is unknown.
    #[error("WAV recording unusable after an earlier write error")]
    Broken,
}

/// Size of the header [`WavRecorder`] writes: RIFF, `fmt ` (16 bytes) and `data`
/// chunk headers.
const RECORDING_HEADER_LEN: u32 = 44;
/// Bytes per stereo 16-bit frame.
const RECORDING_FRAME_BYTES: u32 = 4;
/// Most audio bytes a RIFF file can hold after the header, in whole frames.
const MAX_RECORDING_DATA_BYTES: u32 =
    (u32::MAX - (RECORDING_HEADER_LEN - 8)) / RECORDING_FRAME_BYTES * RECORDING_FRAME_BYTES;

/// Writes a call recording as a stereo 16-bit PCM 8 kHz WAV file.
///
/// The sizes in the header are rewritten every [`WavRecorder::update_every`] samples
/// and by [`WavRecorder::finish`], the RIFF size before the `data` size, so that
/// whenever the process dies the header describes audio that is all on disk: the file
/// stays readable and loses at most the last `update_every` samples. (Surviving a
/// power cut also needs the daemon to sync the file.) Dropping a recorder without
/// `finish` is such a cut: nothing more is written.
#[derive(Debug)]
pub struct WavRecorder<W: Write + Seek> {
    writer: W,
    /// Where the WAV starts in the writer (sizes are rewritten relative to it).
    start: u64,
    data_bytes: u32,
    samples_since_update: u32,
    update_every: u32,
    interleaved: Vec<u8>,
    broken: bool,
}

impl<W: Write + Seek> WavRecorder<W> {
    /// Starts a recording at the writer's current position, updating the header once
    /// per second of audio.
    pub fn new(writer: W) -> Result<Self, RecorderError> {
        Self::with_update_every(writer, SAMPLE_RATE)
    }

    /// Starts a recording that updates its header every `samples` samples per
    /// channel (at least 1).
    pub fn with_update_every(mut writer: W, samples: u32) -> Result<Self, RecorderError> {
        let start = writer.stream_position()?;
        let mut header = Vec::with_capacity(RECORDING_HEADER_LEN as usize);
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&(RECORDING_HEADER_LEN - 8).to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&WAVE_FORMAT_PCM.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        header.extend_from_slice(&(SAMPLE_RATE * RECORDING_FRAME_BYTES).to_le_bytes());
        header.extend_from_slice(&(RECORDING_FRAME_BYTES as u16).to_le_bytes());
        header.extend_from_slice(&16u16.to_le_bytes());
        header.extend_from_slice(b"data");
        header.extend_from_slice(&0u32.to_le_bytes());
        writer.write_all(&header)?;
        Ok(WavRecorder {
            writer,
            start,
            data_bytes: 0,
            samples_since_update: 0,
            update_every: samples.max(1),
            interleaved: Vec::new(),
            broken: false,
        })
    }

    /// How many samples per channel may be written between header updates.
    pub fn update_every(&self) -> u32 {
        self.update_every
    }

    /// Appends a frame: `left` (the caller) and `right` (the callee) interleaved. If
    /// one side is shorter it is padded with silence, so the channels stay aligned in
    /// time.
    pub fn write_frame(&mut self, left: &[i16], right: &[i16]) -> Result<(), RecorderError> {
        if self.broken {
            return Err(RecorderError::Broken);
        }
        let samples = left.len().max(right.len());
        let frame_bytes = u32::try_from(samples)
            .ok()
            .and_then(|samples| samples.checked_mul(RECORDING_FRAME_BYTES))
            .filter(|&bytes| bytes <= MAX_RECORDING_DATA_BYTES - self.data_bytes)
            .ok_or(RecorderError::TooLong {
                data_bytes: self.data_bytes,
            })?;
        self.interleaved.clear();
        for index in 0..samples {
            let left_sample = left.get(index).copied().unwrap_or(0);
            let right_sample = right.get(index).copied().unwrap_or(0);
            self.interleaved
                .extend_from_slice(&left_sample.to_le_bytes());
            self.interleaved
                .extend_from_slice(&right_sample.to_le_bytes());
        }
        if let Err(error) = self.writer.write_all(&self.interleaved) {
            self.broken = true;
            return Err(error.into());
        }
        self.data_bytes += frame_bytes;
        // frame_bytes / 4 fits: it is at most the data size.
        self.samples_since_update = self
            .samples_since_update
            .saturating_add(frame_bytes / RECORDING_FRAME_BYTES);
        if self.samples_since_update >= self.update_every {
            self.update_header()?;
        }
        Ok(())
    }

    /// Samples per channel written so far.
    pub fn samples_written(&self) -> u64 {
        u64::from(self.data_bytes / RECORDING_FRAME_BYTES)
    }

    /// Length of the audio written so far.
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples_written())
    }

    /// Writes the final sizes, flushes, and returns the writer (positioned at the end
    /// of the WAV).
    pub fn finish(mut self) -> Result<W, RecorderError> {
        if self.broken {
            return Err(RecorderError::Broken);
        }
        self.update_header()?;
        self.writer.flush()?;
        Ok(self.writer)
    }

    fn update_header(&mut self) -> Result<(), RecorderError> {
        let result = self.try_update_header();
        if result.is_err() {
            self.broken = true;
        }
        result.map_err(RecorderError::from)
    }

    fn try_update_header(&mut self) -> io::Result<()> {
        let riff_size = RECORDING_HEADER_LEN - 8 + self.data_bytes;
        self.writer.seek(SeekFrom::Start(self.start + 4))?;
        self.writer.write_all(&riff_size.to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(
            self.start + u64::from(RECORDING_HEADER_LEN) - 4,
        ))?;
        self.writer.write_all(&self.data_bytes.to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(
            self.start + u64::from(RECORDING_HEADER_LEN + self.data_bytes),
        ))?;
        self.samples_since_update = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A minimal WAV: RIFF header, then the given chunks (id, body) with pad bytes.
    fn wav_with_chunks(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&body);
        file
    }

    fn fmt(format_tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let block_align = channels * bits.div_ceil(8);
        let mut body = Vec::new();
        body.extend_from_slice(&format_tag.to_le_bytes());
        body.extend_from_slice(&channels.to_le_bytes());
        body.extend_from_slice(&rate.to_le_bytes());
        body.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        body.extend_from_slice(&block_align.to_le_bytes());
        body.extend_from_slice(&bits.to_le_bytes());
        body
    }

    fn pcm16(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn reads_a_plain_8k_file() {
        let file = wav_with_chunks(&[
            (b"fmt ", fmt(1, 1, 8000, 16)),
            (b"data", pcm16(&[1, -2, 300])),
        ]);
        assert_eq!(read_wav(&file).unwrap().samples, vec![1, -2, 300]);
    }

    #[test]
    fn skips_unknown_and_odd_chunks() {
        let file = wav_with_chunks(&[
            (b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00".to_vec()),
            (b"fmt ", fmt(1, 1, 8000, 16)),
            (b"fact", vec![0; 4]),
            (b"junk", vec![7; 5]),
            (b"data", pcm16(&[5, 6])),
        ]);
        assert_eq!(read_wav(&file).unwrap().samples, vec![5, 6]);
    }

    #[test]
    fn data_before_format_is_accepted() {
        let file = wav_with_chunks(&[(b"data", pcm16(&[5, 6])), (b"fmt ", fmt(1, 1, 8000, 16))]);
        assert_eq!(read_wav(&file).unwrap().samples, vec![5, 6]);
    }

    #[test]
    fn odd_data_chunk_without_final_pad_is_accepted() {
        let mut file =
            wav_with_chunks(&[(b"fmt ", fmt(1, 1, 8000, 8)), (b"data", vec![128, 255, 0])]);
        file.pop();
        let riff_size = file.len() as u32 - 8;
        file[4..8].copy_from_slice(&riff_size.to_le_bytes());
        assert_eq!(
            read_wav(&file).unwrap().samples,
            vec![0, 127 << 8, -128 << 8]
        );
    }

    #[test]
    fn trailing_bytes_after_riff_are_ignored() {
        let mut file = wav_with_chunks(&[(b"fmt ", fmt(1, 1, 8000, 16)), (b"data", pcm16(&[9]))]);
        file.extend_from_slice(b"garbage");
        assert_eq!(read_wav(&file).unwrap().samples, vec![9]);
    }

    #[test]
    fn decodes_every_encoding() {
        let cases: Vec<(Vec<u8>, Vec<u8>, i16)> = vec![
            (fmt(1, 1, 8000, 8), vec![0xC0], 64 << 8),
            (fmt(1, 1, 8000, 16), vec![0x34, 0x12], 0x1234),
            (fmt(1, 1, 8000, 24), vec![0xFF, 0x34, 0x12], 0x1234),
            (fmt(1, 1, 8000, 32), vec![0xFF, 0xFF, 0x34, 0x12], 0x1234),
            (fmt(3, 1, 8000, 32), 0.5f32.to_le_bytes().to_vec(), 16384),
            (fmt(3, 1, 8000, 32), 2.0f32.to_le_bytes().to_vec(), 32767),
            (fmt(3, 1, 8000, 32), f32::NAN.to_le_bytes().to_vec(), 0),
            (fmt(6, 1, 8000, 8), vec![0xAA], 32256),
            (fmt(7, 1, 8000, 8), vec![0x00], -32124),
        ];
        for (format, data, expected) in cases {
            let file = wav_with_chunks(&[(b"fmt ", format.clone()), (b"data", data)]);
            assert_eq!(
                read_wav(&file).unwrap().samples,
                vec![expected],
                "{format:?}"
            );
        }
    }

    fn extensible(sub_format: u16, bits: u16, guid_tail: [u8; 14]) -> Vec<u8> {
        let mut body = fmt(WAVE_FORMAT_EXTENSIBLE, 1, 8000, bits);
        body.extend_from_slice(&22u16.to_le_bytes());
        body.extend_from_slice(&bits.to_le_bytes());
        body.extend_from_slice(&4u32.to_le_bytes());
        body.extend_from_slice(&sub_format.to_le_bytes());
        body.extend_from_slice(&guid_tail);
        body
    }

    #[test]
    fn reads_wave_format_extensible() {
        let file = wav_with_chunks(&[
            (b"fmt ", extensible(1, 16, EXTENSIBLE_GUID_TAIL)),
            (b"data", pcm16(&[42])),
        ]);
        assert_eq!(read_wav(&file).unwrap().samples, vec![42]);
        let mut foreign = EXTENSIBLE_GUID_TAIL;
        foreign[13] ^= 1;
        let file = wav_with_chunks(&[
            (b"fmt ", extensible(1, 16, foreign)),
            (b"data", pcm16(&[42])),
        ]);
        assert_eq!(
            read_wav(&file),
            Err(WavError::UnsupportedEncoding {
                format_tag: WAVE_FORMAT_EXTENSIBLE,
                bits_per_sample: 16
            })
        );
        let short = fmt(WAVE_FORMAT_EXTENSIBLE, 1, 8000, 16);
        let file = wav_with_chunks(&[(b"fmt ", short), (b"data", pcm16(&[42]))]);
        assert_eq!(
            read_wav(&file),
            Err(WavError::FormatTooShort {
                len: 16,
                format_tag: WAVE_FORMAT_EXTENSIBLE,
                needed: 40
            })
        );
    }

    #[test]
    fn mixes_stereo_down() {
        let file = wav_with_chunks(&[
            (b"fmt ", fmt(1, 2, 8000, 16)),
            (b"data", pcm16(&[100, 300, -5, -6, 7])),
        ]);
        // The trailing half frame is dropped.
        assert_eq!(read_wav(&file).unwrap().samples, vec![200, -5]);
        let stereo = read_wav_stereo(&file, DEFAULT_MAX_WAV_BYTES).unwrap();
        assert_eq!(
            stereo,
            StereoAudio {
                left: vec![100, -5],
                right: vec![300, -6]
            }
        );
    }

    #[test]
    fn stereo_reader_rejects_mono() {
        let file = wav_with_chunks(&[(b"fmt ", fmt(1, 1, 8000, 16)), (b"data", pcm16(&[1]))]);
        assert_eq!(
            read_wav_stereo(&file, DEFAULT_MAX_WAV_BYTES),
            Err(WavError::NotStereo(1))
        );
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        let good_data = (b"data", pcm16(&[1]));
        let cases: Vec<(Vec<u8>, WavError)> = vec![
            (
                fmt(2, 1, 8000, 4),
                WavError::UnsupportedEncoding {
                    format_tag: 2,
                    bits_per_sample: 4,
                },
            ),
            (
                fmt(1, 1, 8000, 12),
                WavError::UnsupportedEncoding {
                    format_tag: 1,
                    bits_per_sample: 12,
                },
            ),
            (
                fmt(6, 1, 8000, 16),
                WavError::UnsupportedEncoding {
                    format_tag: 6,
                    bits_per_sample: 16,
                },
            ),
            (fmt(1, 3, 8000, 16), WavError::UnsupportedChannels(3)),
            (fmt(1, 0, 8000, 16), WavError::UnsupportedChannels(0)),
            (fmt(1, 1, 0, 16), WavError::UnsupportedSampleRate(0)),
            (fmt(1, 1, 3999, 16), WavError::UnsupportedSampleRate(3999)),
            (
                fmt(1, 1, 400_000, 16),
                WavError::UnsupportedSampleRate(400_000),
            ),
            (
                fmt(1, 1, 8000, 16)[..14].to_vec(),
                WavError::FormatTooShort {
                    len: 14,
                    format_tag: 1,
                    needed: 16,
                },
            ),
            (
                vec![1],
                WavError::FormatTooShort {
                    len: 1,
                    format_tag: 0,
                    needed: 16,
                },
            ),
        ];
        for (format, error) in cases {
            let file = wav_with_chunks(&[(b"fmt ", format), good_data.clone()]);
            assert_eq!(read_wav(&file), Err(error));
        }
        let mut bad_align = fmt(1, 2, 8000, 16);
        bad_align[12] = 2;
        let file = wav_with_chunks(&[(b"fmt ", bad_align), good_data.clone()]);
        assert_eq!(
            read_wav(&file),
            Err(WavError::BadBlockAlign {
                block_align: 2,
                channels: 2,
                bits_per_sample: 16
            })
        );
        assert_eq!(
            read_wav(&wav_with_chunks(std::slice::from_ref(&good_data))),
            Err(WavError::MissingFormat)
        );
        assert_eq!(
            read_wav(&wav_with_chunks(&[(b"fmt ", fmt(1, 1, 8000, 16))])),
            Err(WavError::MissingData)
        );
    }

    #[test]
    fn rejects_non_wave_and_oversized_files() {
        assert_eq!(read_wav(b""), Err(WavError::NotWave));
        assert_eq!(
            read_wav(b"RIFF\x04\x00\x00\x00AVI "),
            Err(WavError::NotWave)
        );
        assert_eq!(
            read_wav(b"RIFX\x04\x00\x00\x00WAVE"),
            Err(WavError::NotWave)
        );
        let file = wav_with_chunks(&[(b"fmt ", fmt(1, 1, 8000, 16)), (b"data", pcm16(&[0; 100]))]);
        assert_eq!(
            read_wav_limited(&file, 100),
            Err(WavError::TooLarge {
                len: file.len(),
                max: 100
            })
        );
        assert!(read_wav_limited(&file, file.len()).is_ok());
    }

    #[test]
    fn rejects_truncated_files() {
        let file = wav_with_chunks(&[
            (b"fmt ", fmt(1, 1, 8000, 16)),
            (b"data", pcm16(&[1, 2, 3, 4])),
        ]);
        let cut = &file[..file.len() - 2];
        assert_eq!(
            read_wav(cut),
            Err(WavError::Truncated {
                chunk: "RIFF".to_owned(),
                declared: 44,
                available: 42
            })
        );
        // RIFF size fixed up, but the data chunk still claims 8 bytes.
        let mut cut = cut.to_vec();
        cut[4..8].copy_from_slice(&42u32.to_le_bytes());
        assert_eq!(
            read_wav(&cut),
            Err(WavError::Truncated {
                chunk: "data".to_owned(),
                declared: 8,
                available: 6
            })
        );
        // A chunk before the data claiming 4 GiB.
        let mut huge = wav_with_chunks(&[
            (b"LIST", vec![0; 4]),
            (b"fmt ", fmt(1, 1, 8000, 16)),
            (b"data", vec![]),
        ]);
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            read_wav(&huge),
            Err(WavError::Truncated {
                chunk: "LIST".to_owned(),
                declared: u64::from(u32::MAX),
                available: 36
            })
        );
    }

    #[test]
    fn never_panics_on_prefixes_or_byte_flips() {
        let file = wav_with_chunks(&[
            (b"LIST", vec![1, 2, 3]),
            (b"fmt ", extensible(1, 16, EXTENSIBLE_GUID_TAIL)),
            (b"data", pcm16(&[1, 2, 3, 4, 5])),
        ]);
        for len in 0..file.len() {
            let _ = read_wav(&file[..len]);
        }
        for index in 0..file.len() {
            for value in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let mut flipped = file.clone();
                flipped[index] = value;
                let _ = read_wav(&flipped);
            }
        }
    }

    #[test]
    fn recorder_writes_a_readable_stereo_file() {
        let mut recorder = WavRecorder::new(Cursor::new(Vec::new())).unwrap();
        recorder.write_frame(&[1, 2, 3], &[-1, -2, -3]).unwrap();
        recorder.write_frame(&[4], &[]).unwrap();
        assert_eq!(recorder.samples_written(), 4);
        assert_eq!(recorder.duration(), Duration::from_micros(500));
        let bytes = recorder.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 44 + 16);
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(read_u32(&bytes, 4), 36 + 16);
        assert_eq!(read_u32(&bytes, 40), 16);
        let pcm = decode_wav(&bytes, usize::MAX).unwrap();
        assert_eq!(
            pcm.format,
            WavFormat {
                encoding: WavEncoding::Pcm16,
                channels: 2,
                sample_rate: 8000
            }
        );
        let stereo = read_wav_stereo(&bytes, usize::MAX).unwrap();
        assert_eq!(
            stereo,
            StereoAudio {
                left: vec![1, 2, 3, 4],
                right: vec![-1, -2, -3, 0]
            }
        );
    }

    #[test]
    fn empty_recording_is_a_valid_file() {
        let bytes = WavRecorder::new(Cursor::new(Vec::new()))
            .unwrap()
            .finish()
            .unwrap()
            .into_inner();
        assert_eq!(bytes.len(), 44);
        assert_eq!(
            read_wav_stereo(&bytes, usize::MAX).unwrap(),
            StereoAudio::default()
        );
    }

    #[test]
    fn header_lags_by_at_most_update_every() {
        let mut cursor = Cursor::new(Vec::new());
        let mut recorder = WavRecorder::with_update_every(&mut cursor, 320).unwrap();
        assert_eq!(recorder.update_every(), 320);
        let frame = [7i16; 160];
        let mut declared = Vec::new();
        for _ in 0..5 {
            recorder.write_frame(&frame, &frame).unwrap();
            declared.push(read_u32(recorder.writer.get_ref(), 40) / 4);
        }
        assert_eq!(declared, vec![0, 320, 320, 640, 640]);
    }

    #[test]
    fn recorder_starts_at_the_writer_position() {
        let mut cursor = Cursor::new(b"prefix".to_vec());
        cursor.set_position(6);
        let mut recorder = WavRecorder::with_update_every(&mut cursor, 1).unwrap();
        recorder.write_frame(&[5], &[6]).unwrap();
        recorder.finish().unwrap();
        let bytes = cursor.into_inner();
        assert_eq!(&bytes[..6], b"prefix");
        let stereo = read_wav_stereo(&bytes[6..], usize::MAX).unwrap();
        assert_eq!(
            stereo,
            StereoAudio {
                left: vec![5],
                right: vec![6]
            }
        );
    }

    /// Accepts `limit` bytes, then fails every write.
    struct FailingWriter {
        inner: Cursor<Vec<u8>>,
        limit: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let room = self.limit.saturating_sub(self.inner.get_ref().len());
            if room == 0 {
                return Err(io::Error::other("disk full"));
            }
            self.inner.write(&buf[..buf.len().min(room)])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for FailingWriter {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.inner.seek(to)
        }
    }

    #[test]
    fn a_failed_write_breaks_the_recorder() {
        let writer = FailingWriter {
            inner: Cursor::new(Vec::new()),
            limit: 50,
        };
        let mut recorder = WavRecorder::new(writer).unwrap();
        recorder.write_frame(&[1], &[1]).unwrap();
        assert!(matches!(
            recorder.write_frame(&[1; 10], &[1; 10]),
            Err(RecorderError::Io(_))
        ));
        assert!(matches!(
            recorder.write_frame(&[1], &[1]),
            Err(RecorderError::Broken)
        ));
        assert!(matches!(recorder.finish(), Err(RecorderError::Broken)));
        let failing_header = FailingWriter {
            inner: Cursor::new(Vec::new()),
            limit: 10,
        };
        assert!(matches!(
            WavRecorder::new(failing_header),
            Err(RecorderError::Io(_))
        ));
    }

    #[test]
    fn recording_size_is_capped() {
        let mut recorder = WavRecorder::new(Cursor::new(Vec::new())).unwrap();
        recorder.data_bytes = MAX_RECORDING_DATA_BYTES - 4;
        let full = MAX_RECORDING_DATA_BYTES - 4;
        assert!(
            matches!(recorder.write_frame(&[1, 2], &[]), Err(RecorderError::TooLong { data_bytes }) if data_bytes == full)
        );
        recorder.write_frame(&[1], &[]).unwrap();
        assert!(matches!(
            recorder.write_frame(&[1], &[]),
            Err(RecorderError::TooLong { .. })
        ));
        assert_eq!(
            u64::from(MAX_RECORDING_DATA_BYTES) + 36,
            u64::from(u32::MAX) - 3
        );
    }
}
