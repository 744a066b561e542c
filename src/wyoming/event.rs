//! The Wyoming wire format: one event is a JSON header line, then `data_length` bytes of
//! JSON ("extra data", merged over the header's `data`), then `payload_length` bytes of
//! binary payload (audio). The header carries `type`, and optionally `data`, `data_length`,
//! `payload_length` and `version`; other header keys are ignored.
//!
//! Everything a client sends is bounded before it is read into memory: the header line by
//! [`MAX_HEADER_BYTES`], the extra data by [`MAX_DATA_BYTES`], the payload by
//! [`MAX_PAYLOAD_BYTES`]. A length over its limit is refused from the header alone.

use std::io::{self, BufRead, Write};

use serde_json::{Map, Value};

/// The longest header line, newline excluded. Headers are a few hundred bytes; a client
/// that sends a megabyte without a newline is not speaking the protocol.
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// The most extra data one event may announce. Clients send small objects (a transcript, a
/// format, a context); a megabyte leaves room for a long context and bounds what one event
/// can make the server parse.
pub const MAX_DATA_BYTES: usize = 1 << 20;
/// The most payload one event may announce. A payload is one chunk of audio, read whole
/// before it is used: 4 MiB is over 20 s of 48 kHz stereo 16-bit audio (clients send
/// chunks of tens of milliseconds), and bounds a client's buffer.
pub const MAX_PAYLOAD_BYTES: usize = 4 << 20;
/// The `version` written in every header: the release of the `wyoming` package whose
/// format this follows (and against which it is tested).
pub const PROTOCOL_VERSION: &str = "1.10.2";

/// One event: its type, its data (header `data` and extra data merged), its payload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Vec<u8>,
}

impl Event {
    pub fn new(kind: &str, data: Value) -> Event {
        let data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Event {
            kind: kind.to_string(),
            data,
            payload: Vec::new(),
        }
    }

    /// A string field of the data.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// Why an event could not be read. Each is the client's fault except `Io`; all end the
/// connection, since the stream can no longer be trusted to be at an event's start.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the header line is longer than {MAX_HEADER_BYTES} bytes")]
    HeaderTooLong,
    #[error("the header is not a JSON object: {0}")]
    BadHeader(String),
    #[error("the header has no `type` string")]
    NoType,
    #[error("`{key}` = {value}: expected a whole number of bytes")]
    BadLength { key: &'static str, value: String },
    #[error("`{key}` = {value}: more than {limit} bytes, the most this server reads")]
    TooLarge {
        key: &'static str,
        value: u64,
        limit: usize,
    },
    #[error("the extra data ({0} bytes) is not a JSON object")]
    BadData(usize),
    #[error("the connection ended inside an event (in its {0})")]
    Truncated(&'static str),
    #[error("no complete event for too long (in its {0})")]
    TimedOut(&'static str),
    #[error(transparent)]
    Io(io::Error),
}

impl ProtocolError {
    /// A short machine-readable name for the `error` event's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::HeaderTooLong | ProtocolError::TooLarge { .. } => "too-large",
            ProtocolError::TimedOut(_) => "timeout",
            _ => "bad-event",
        }
    }
}

/// Reads the next event; None when the connection ends cleanly between two events.
pub fn read_event(reader: &mut impl BufRead) -> Result<Option<Event>, ProtocolError> {
    let mut line = Vec::new();
    let read = io::Read::take(&mut *reader, MAX_HEADER_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| io_error(e, "header"))?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_HEADER_BYTES {
            ProtocolError::HeaderTooLong
        } else {
            ProtocolError::Truncated("header")
        });
    }
    let header: Value =
        serde_json::from_slice(&line).map_err(|e| ProtocolError::BadHeader(e.to_string()))?;
    let Value::Object(mut header) = header else {
        return Err(ProtocolError::BadHeader(format!(
            "got {}",
            kind_of(&header)
        )));
    };
    let kind = match header.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => return Err(ProtocolError::NoType),
    };
    let mut data = match header.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(other) => {
            return Err(ProtocolError::BadHeader(format!(
                "`data` is {}, not an object",
                kind_of(&other)
            )))
        }
    };
    let data_length = length(&header, "data_length", MAX_DATA_BYTES)?;
    let payload_length = length(&header, "payload_length", MAX_PAYLOAD_BYTES)?;
    if data_length > 0 {
        let bytes = read_exactly(reader, data_length, "extra data")?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(extra)) => data.extend(extra),
            _ => return Err(ProtocolError::BadData(data_length)),
        }
    }
    let payload = read_exactly(reader, payload_length, "payload")?;
    Ok(Some(Event {
        kind,
        data,
        payload,
    }))
}

/// Writes `event` as the `wyoming` package does: the data as extra data after the header,
/// the payload last.
pub fn write_event(writer: &mut impl Write, event: &Event) -> io::Result<()> {
    let mut header = Map::new();
    header.insert("type".into(), event.kind.clone().into());
    header.insert("version".into(), PROTOCOL_VERSION.into());
    let data = if event.data.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&event.data)?
    };
    if !data.is_empty() {
        header.insert("data_length".into(), data.len().into());
    }
    if !event.payload.is_empty() {
        header.insert("payload_length".into(), event.payload.len().into());
    }
    let mut bytes = serde_json::to_vec(&header)?;
    bytes.push(b'\n');
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&event.payload);
    writer.write_all(&bytes)?;
    writer.flush()
}

/// A length field of the header: absent or null is 0.
fn length(
    header: &Map<String, Value>,
    key: &'static str,
    limit: usize,
) -> Result<usize, ProtocolError> {
    let value = match header.get(key) {
        None | Some(Value::Null) => return Ok(0),
        Some(value) => value,
    };
    let Some(n) = value.as_u64() else {
        return Err(ProtocolError::BadLength {
            key,
            value: value.to_string(),
        });
    };
    match usize::try_from(n) {
        Ok(n) if n <= limit => Ok(n),
        _ => Err(ProtocolError::TooLarge {
            key,
            value: n,
            limit,
        }),
    }
}

fn read_exactly(
    reader: &mut impl BufRead,
    len: usize,
    part: &'static str,
) -> Result<Vec<u8>, ProtocolError> {
    let mut bytes = vec![0; len];
    reader
        .read_exact(&mut bytes)
        .map_err(|e| io_error(e, part))?;
    Ok(bytes)
}

fn io_error(e: io::Error, part: &'static str) -> ProtocolError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtocolError::Truncated(part),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ProtocolError::TimedOut(part),
        _ => ProtocolError::Io(e),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(bytes: &[u8]) -> Result<Option<Event>, ProtocolError> {
        read_event(&mut io::BufReader::new(bytes))
    }

    #[test]
    fn written_events_read_back() {
        let mut event = Event::new("audio-chunk", json!({"rate": 16000, "width": 2}));
        event.payload = vec![1, 2, 3, 4];
        let mut bytes = Vec::new();
        write_event(&mut bytes, &event).unwrap();
        write_event(&mut bytes, &Event::new("describe", json!({}))).unwrap();
        let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
        let header: Value = serde_json::from_slice(&bytes[..header_end]).unwrap();
        assert_eq!(header["type"], "audio-chunk");
        assert_eq!(header["payload_length"], 4);
        assert_eq!(header["version"], PROTOCOL_VERSION);
        assert!(header.get("data").is_none(), "data goes after the header");

        let mut reader = io::BufReader::new(&bytes[..]);
        assert_eq!(read_event(&mut reader).unwrap(), Some(event));
        let describe = read_event(&mut reader).unwrap().unwrap();
        assert_eq!(
            (describe.kind.as_str(), describe.data.len()),
            ("describe", 0)
        );
        assert_eq!(read_event(&mut reader).unwrap(), None);
    }

    #[test]
    fn extra_data_is_merged_over_the_header_data() {
        let extra = br#"{"b": 2, "c": 3}"#;
        let text = format!(
            "{{\"type\":\"x\",\"data\":{{\"a\":1,\"b\":1}},\"data_length\":{}}}\n",
            extra.len()
        );
        let event = read(&[text.as_bytes(), extra].concat()).unwrap().unwrap();
        assert_eq!(Value::Object(event.data), json!({"a": 1, "b": 2, "c": 3}));
    }

    #[test]
    fn bad_headers_are_refused() {
        let cases: [(&[u8], &str); 8] = [
            (b"not json\n", "not a JSON object"),
            (b"[1]\n", "not a JSON object"),
            (b"{\"data\":{}}\n", "no `type`"),
            (b"{\"type\":\"x\",\"data\":3}\n", "not an object"),
            (
                b"{\"type\":\"x\",\"payload_length\":-1}\n",
                "`payload_length` = -1",
            ),
            (
                b"{\"type\":\"x\",\"data_length\":1.5}\n",
                "`data_length` = 1.5",
            ),
            (
                b"{\"type\":\"x\",\"data_length\":2}\n[]",
                "not a JSON object",
            ),
            (b"{\"type\":\"x\"", "ended inside an event (in its header)"),
        ];
        for (bytes, expected) in cases {
            let error = read(bytes).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{:?}: {error}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn lengths_over_the_limits_are_refused_before_reading() {
        let text = format!(
            "{{\"type\":\"x\",\"payload_length\":{}}}\n",
            MAX_PAYLOAD_BYTES + 1
        );
        let error = read(text.as_bytes()).unwrap_err();
        assert!(matches!(
            error,
            ProtocolError::TooLarge {
                key: "payload_length",
                ..
            }
        ));
        let text = format!(
            "{{\"type\":\"x\",\"data_length\":{}}}\n",
            MAX_DATA_BYTES + 1
        );
        assert_eq!(read(text.as_bytes()).unwrap_err().code(), "too-large");
    }

    #[test]
    fn a_payload_shorter_than_announced_is_truncation() {
        let error = read(b"{\"type\":\"x\",\"payload_length\":10}\nabc").unwrap_err();
        assert!(
            matches!(error, ProtocolError::Truncated("payload")),
            "{error}"
        );
    }

    #[test]
    fn an_endless_header_line_stops_at_the_limit() {
        let bytes = vec![b'a'; MAX_HEADER_BYTES + 10];
        assert!(matches!(
            read(&bytes).unwrap_err(),
            ProtocolError::HeaderTooLong
        ));
        // Exactly at the limit, it is read (and then fails as JSON).
        let mut bytes = vec![b' '; MAX_HEADER_BYTES - 12];
        bytes.splice(0..0, *b"{\"type\":\"x\"}");
        bytes.push(b'\n');
        assert_eq!(read(&bytes).unwrap().unwrap().kind, "x");
    }
}
