//! WebVTT and SRT files written while captions are made.
//!
//! Finals arrive a few words at a time; a cue of one or two words flashing by is hard to
//! read, so pieces are gathered into a cue until a sentence ends, the cue is long enough, or
//! a pause separates it from the next piece. Each cue is written and flushed as soon as it is
//! complete, so a player or `tail -f` can follow the file live.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::CaptionText;

/// A cue closes once it holds this many characters (two lines of the usual 42).
const MAX_CUE_CHARS: usize = 84;
/// ... or lasts this long.
const MAX_CUE_MS: u64 = 7_000;
/// A piece that starts this long after the cue's end starts a new cue.
const CUE_GAP_MS: u64 = 1_500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubtitleFormat {
    WebVtt,
    Srt,
}

impl SubtitleFormat {
    /// The format a file name asks for (`.vtt` or `.srt`).
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "vtt" => Some(Self::WebVtt),
            "srt" => Some(Self::Srt),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write subtitles to {}: {source}", path.display())]
pub struct SubtitleError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Appends cues to a subtitle stream as final captions arrive.
pub struct SubtitleWriter<W: Write> {
    out: W,
    format: SubtitleFormat,
    /// Cues written so far (SRT numbers them from 1).
    written: u32,
    /// The cue being gathered.
    cue: Option<CaptionText>,
}

impl SubtitleWriter<BufWriter<File>> {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path, format: SubtitleFormat) -> Result<Self, SubtitleError> {
        let error = |source| SubtitleError {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(error)?;
        Self::new(BufWriter::new(file), format).map_err(error)
    }
}

impl<W: Write> SubtitleWriter<W> {
    /// Starts a stream (WebVTT's header is written at once).
    pub fn new(mut out: W, format: SubtitleFormat) -> io::Result<Self> {
        if format == SubtitleFormat::WebVtt {
            out.write_all(b"WEBVTT\n\n")?;
            out.flush()?;
        }
        Ok(Self {
            out,
            format,
            written: 0,
            cue: None,
        })
    }

    /// Takes one final caption; writes the cues it completes, if any. A caption with word
    /// times is taken word by word, so a cue ends at the word that ends a sentence or fills
    /// it, with that word's time.
    pub fn push(&mut self, text: &CaptionText) -> io::Result<()> {
        if text.words.is_empty() {
            return self.push_piece(text);
        }
        for word in &text.words {
            self.push_piece(&CaptionText {
                text: word.word.clone(),
                start_ms: word.start_ms,
                end_ms: word.end_ms,
                words: Vec::new(),
            })?;
        }
        Ok(())
    }

    fn push_piece(&mut self, text: &CaptionText) -> io::Result<()> {
        if let Some(cue) = &mut self.cue {
            if text.start_ms > cue.end_ms + CUE_GAP_MS {
                self.write_cue()?;
            }
        }
        match &mut self.cue {
            Some(cue) => {
                cue.text.push(' ');
                cue.text.push_str(text.text.trim());
                cue.end_ms = cue.end_ms.max(text.end_ms);
            }
            None => {
                self.cue = Some(CaptionText {
                    text: text.text.trim().to_string(),
                    ..text.clone()
                })
            }
        }
        let cue = self.cue.as_ref().expect("just filled");
        if ends_sentence(&cue.text)
            || cue.text.chars().count() >= MAX_CUE_CHARS
            || cue.end_ms - cue.start_ms >= MAX_CUE_MS
        {
            self.write_cue()?;
        }
        Ok(())
    }

    /// Writes the cue being gathered (the stream ended or went quiet).
    pub fn finish(&mut self) -> io::Result<()> {
        self.write_cue()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_cue(&mut self) -> io::Result<()> {
        let Some(cue) = self.cue.take() else {
            return Ok(());
        };
        self.written += 1;
        // Players skip cues that end where they start.
        let end_ms = cue.end_ms.max(cue.start_ms + 1);
        let (start, end) = (
            timestamp(cue.start_ms, self.format),
            timestamp(end_ms, self.format),
        );
        match self.format {
            SubtitleFormat::WebVtt => writeln!(self.out, "{start} --> {end}\n{}\n", cue.text)?,
            SubtitleFormat::Srt => writeln!(
                self.out,
                "{}\n{start} --> {end}\n{}\n",
                self.written, cue.text
            )?,
        }
        self.out.flush()
    }
}

/// `HH:MM:SS.mmm` (WebVTT) or `HH:MM:SS,mmm` (SRT); hours grow past 99 if they must.
fn timestamp(ms: u64, format: SubtitleFormat) -> String {
    let separator = match format {
        SubtitleFormat::WebVtt => '.',
        SubtitleFormat::Srt => ',',
    };
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{separator}{milli:03}")
}

/// Whether `text` ends a sentence (a closing quote or bracket after the stop is fine).
fn ends_sentence(text: &str) -> bool {
    text.trim_end()
        .trim_end_matches(['"', '\'', ')', ']'])
        .ends_with(['.', '?', '!'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(text: &str, start_ms: u64, end_ms: u64) -> CaptionText {
        CaptionText {
            text: text.to_string(),
            start_ms,
            end_ms,
            words: Vec::new(),
        }
    }

    fn written(format: SubtitleFormat, pieces: &[CaptionText]) -> String {
        let mut writer = SubtitleWriter::new(Vec::new(), format).unwrap();
        for p in pieces {
            writer.push(p).unwrap();
        }
        writer.finish().unwrap();
        String::from_utf8(writer.into_inner()).unwrap()
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0, SubtitleFormat::WebVtt), "00:00:00.000");
        assert_eq!(timestamp(3_723_045, SubtitleFormat::WebVtt), "01:02:03.045");
        assert_eq!(timestamp(59_999, SubtitleFormat::Srt), "00:00:59,999");
        assert_eq!(timestamp(360_000_000, SubtitleFormat::Srt), "100:00:00,000");
    }

    #[test]
    fn pieces_gather_into_sentence_cues() {
        let pieces = [
            piece("Ask not", 1000, 1800),
            piece("what your country can do.", 1900, 3500),
            piece("Ask what", 4000, 4600),
        ];
        assert_eq!(
            written(SubtitleFormat::WebVtt, &pieces),
            "WEBVTT\n\n\
             00:00:01.000 --> 00:00:03.500\nAsk not what your country can do.\n\n\
             00:00:04.000 --> 00:00:04.600\nAsk what\n\n"
        );
        assert_eq!(
            written(SubtitleFormat::Srt, &pieces),
            "1\n00:00:01,000 --> 00:00:03,500\nAsk not what your country can do.\n\n\
             2\n00:00:04,000 --> 00:00:04,600\nAsk what\n\n"
        );
    }

    #[test]
    fn word_times_end_a_cue_inside_a_caption() {
        let word = |word: &str, start_ms, end_ms| super::super::CaptionWord {
            word: word.into(),
            start_ms,
            end_ms,
        };
        let caption = CaptionText {
            text: "It ends. And on".into(),
            start_ms: 1000,
            end_ms: 3000,
            words: vec![
                word("It", 1000, 1200),
                word("ends.", 1200, 1700),
                word("And", 2400, 2600),
                word("on", 2600, 3000),
            ],
        };
        assert_eq!(
            written(SubtitleFormat::Srt, &[caption]),
            "1\n00:00:01,000 --> 00:00:01,700\nIt ends.\n\n\
             2\n00:00:02,400 --> 00:00:03,000\nAnd on\n\n"
        );
    }

    #[test]
    fn a_pause_or_a_long_cue_closes_it() {
        let pieces = [
            piece("before the pause", 0, 1000),
            piece("after it", 3000, 3500),
            piece("and on", 3600, 11_000),
        ];
        let vtt = written(SubtitleFormat::WebVtt, &pieces);
        assert_eq!(vtt.matches(" --> ").count(), 2, "{vtt}");
        assert!(vtt.contains("00:00:03.000 --> 00:00:11.000\nafter it and on\n"));
    }

    #[test]
    fn each_cue_is_flushed_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.srt");
        let format = SubtitleFormat::from_path(&path).unwrap();
        let mut writer = SubtitleWriter::create(&path, format).unwrap();
        writer.push(&piece("Hello there.", 0, 900)).unwrap();
        // Still open: what a reader sees now.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "1\n00:00:00,000 --> 00:00:00,900\nHello there.\n\n");
    }
}
