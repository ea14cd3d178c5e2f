//! The framed protocol between the broker and its engine processes: `[u32 length][tag]
//! [fields]`, little-endian, strings as `[u32 length][UTF-8]`. Scripts, arguments and
//! results travel as their JSON text, unescaped.

use std::io::{self, Read, Write};

use super::bridge::ConsoleLevel;
use super::outcome::{ExecutionOutcome, InterruptReason};
use crate::protocol::ErrorInfo;
use crate::tools::ToolReply;

/// Larger frames mean a corrupt stream (results are capped far below this).
pub(crate) const MAX_FRAME: usize = 1 << 30;

#[derive(Clone, Debug, PartialEq)]
pub enum ToEngine {
    Execute {
        exec: u64,
        code: String,
        memory_limit: u64,
        max_result_bytes: u64,
        max_depth: u32,
        globals_json: Option<String>,
    },
    ToolResult {
        exec: u64,
        index: u32,
        reply: ToolReply,
    },
    Interrupt {
        exec: u64,
        reason: InterruptReason,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum FromEngine {
    /// The process is locked down and its first isolate exists (building its first context):
    /// the process takes `Execute`s, up to its isolate count at once. Sent once.
    Ready,
    CallTool {
        exec: u64,
        index: u32,
        name: String,
        args_json: String,
    },
    Console {
        exec: u64,
        level: ConsoleLevel,
        text: String,
    },
    /// The run reached its heap limit; its outcome follows (or the process is killed).
    MemoryLimitReached {
        exec: u64,
        report: String,
    },
    /// The layers of confinement the process applied (`confine`), one per line; sent once,
    /// before the first `Ready`.
    Confined {
        layers: String,
    },
    /// The run ended. A `tainted` isolate (it hit a limit or was stopped) is replaced instead
    /// of taking another run.
    Outcome {
        exec: u64,
        outcome: ExecutionOutcome,
        tainted: bool,
    },
}

/// Builds a whole frame, length prefix first, so it leaves in one `write`.
struct Writer(Vec<u8>);

impl Writer {
    fn frame() -> Writer {
        Writer(vec![0; 4])
    }

    fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.u8(0),
            Some(s) => self.u8(1).str(s),
        }
    }

    fn error(&mut self, e: &ErrorInfo) -> &mut Self {
        self.str(&e.code).str(&e.name).str(&e.message)
    }
}

struct Reader<'a>(&'a [u8]);

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "corrupt engine frame")
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| corrupt())?))
    }

    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| corrupt())?))
    }

    fn str(&mut self) -> io::Result<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| corrupt())
    }

    fn opt_str(&mut self) -> io::Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.str().map(Some),
        }
    }

    fn error(&mut self) -> io::Result<ErrorInfo> {
        let code = self.str()?;
        let name = self.str()?;
        let message = self.str()?;
        Ok(ErrorInfo { code, message, name })
    }
}

fn reason_from(v: u8) -> io::Result<InterruptReason> {
    InterruptReason::from_u8(v).ok_or_else(corrupt)
}

impl ToEngine {
    /// The message as a frame: its length, then its bytes.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut w = Writer::frame();
        match self {
            ToEngine::Execute { exec, code, memory_limit, max_result_bytes, max_depth, globals_json } => {
                w.u8(1).u64(*exec).str(code).u64(*memory_limit).u64(*max_result_bytes).u32(*max_depth);
                w.opt_str(globals_json.as_deref());
            }
            ToEngine::ToolResult { exec, index, reply } => {
                w.u8(2).u64(*exec).u32(*index);
                match reply {
                    ToolReply::Ok(json) => w.u8(0).opt_str(json.as_deref()),
                    ToolReply::Err(e) => w.u8(1).error(e),
                };
            }
            ToEngine::Interrupt { exec, reason } => {
                w.u8(3).u64(*exec).u8(reason.to_u8());
            }
        }
        w.finish()
    }

    pub fn decode(frame: &[u8]) -> io::Result<ToEngine> {
        let mut r = Reader(frame);
        Ok(match r.u8()? {
            1 => ToEngine::Execute {
                exec: r.u64()?,
                code: r.str()?,
                memory_limit: r.u64()?,
                max_result_bytes: r.u64()?,
                max_depth: r.u32()?,
                globals_json: r.opt_str()?,
            },
            2 => {
                let exec = r.u64()?;
                let index = r.u32()?;
                let reply = match r.u8()? {
                    0 => ToolReply::Ok(r.opt_str()?),
                    _ => ToolReply::Err(r.error()?),
                };
                ToEngine::ToolResult { exec, index, reply }
            }
            3 => ToEngine::Interrupt { exec: r.u64()?, reason: reason_from(r.u8()?)? },
            _ => return Err(corrupt()),
        })
    }
}

fn level_index(level: ConsoleLevel) -> u8 {
    match level {
        ConsoleLevel::Log => 0,
        ConsoleLevel::Info => 1,
        ConsoleLevel::Warn => 2,
        ConsoleLevel::Error => 3,
        ConsoleLevel::Debug => 4,
    }
}

impl FromEngine {
    /// The message as a frame: its length, then its bytes.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut w = Writer::frame();
        match self {
            FromEngine::Ready => {
                w.u8(10);
            }
            FromEngine::CallTool { exec, index, name, args_json } => {
                w.u8(11).u64(*exec).u32(*index).str(name).str(args_json);
            }
            FromEngine::Console { exec, level, text } => {
                w.u8(12).u64(*exec).u8(level_index(*level)).str(text);
            }
            FromEngine::MemoryLimitReached { exec, report } => {
                w.u8(14).u64(*exec).str(report);
            }
            FromEngine::Confined { layers } => {
                w.u8(15).str(layers);
            }
            FromEngine::Outcome { exec, outcome, tainted } => {
                w.u8(13).u64(*exec).u8(u8::from(*tainted));
                match outcome {
                    ExecutionOutcome::Returned(value) => w.u8(0).opt_str(value.as_deref()),
                    ExecutionOutcome::Threw(e) => w.u8(1).error(e),
                    ExecutionOutcome::Interrupted { reason, detail } => {
                        w.u8(2).u8(reason.to_u8()).opt_str(detail.as_deref())
                    }
                };
            }
        }
        w.finish()
    }

    pub fn decode(frame: &[u8]) -> io::Result<FromEngine> {
        let mut r = Reader(frame);
        Ok(match r.u8()? {
            10 => FromEngine::Ready,
            11 => {
                FromEngine::CallTool { exec: r.u64()?, index: r.u32()?, name: r.str()?, args_json: r.str()? }
            }
            12 => FromEngine::Console {
                exec: r.u64()?,
                level: ConsoleLevel::from_index(u32::from(r.u8()?)),
                text: r.str()?,
            },
            13 => {
                let exec = r.u64()?;
                let tainted = r.u8()? != 0;
                let outcome = match r.u8()? {
                    0 => ExecutionOutcome::Returned(r.opt_str()?),
                    1 => ExecutionOutcome::Threw(r.error()?),
                    _ => {
                        ExecutionOutcome::Interrupted { reason: reason_from(r.u8()?)?, detail: r.opt_str()? }
                    }
                };
                FromEngine::Outcome { exec, outcome, tainted }
            }
            14 => FromEngine::MemoryLimitReached { exec: r.u64()?, report: r.str()? },
            15 => FromEngine::Confined { layers: r.str()? },
            _ => return Err(corrupt()),
        })
    }
}

/// Writes a frame made by `to_frame` (one write for the pipe, so one wake-up for the reader).
pub fn write_frame(out: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    out.write_all(frame)?;
    out.flush()
}

pub fn read_frame(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(corrupt());
    }
    let mut frame = vec![0u8; len];
    input.read_exact(&mut frame)?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let to_engine = [
            ToEngine::Execute {
                exec: 7,
                code: "return '\u{1F600}'".into(),
                memory_limit: 1 << 27,
                max_result_bytes: 5,
                max_depth: 20,
                globals_json: Some("{\"a\":1}".into()),
            },
            ToEngine::ToolResult { exec: 7, index: 2, reply: ToolReply::Ok(None) },
            ToEngine::ToolResult {
                exec: 7,
                index: 3,
                reply: ToolReply::Err(ErrorInfo::named("E", "TypeError", "m")),
            },
            ToEngine::Interrupt { exec: 7, reason: InterruptReason::Timeout },
        ];
        for message in to_engine {
            assert_eq!(ToEngine::decode(&message.to_frame()[4..]).unwrap(), message);
        }
        let from_engine = [
            FromEngine::Ready,
            FromEngine::CallTool { exec: 1, index: 0, name: "t".into(), args_json: "{}".into() },
            FromEngine::Console { exec: 1, level: ConsoleLevel::Warn, text: "w".into() },
            FromEngine::MemoryLimitReached { exec: 1, report: "r".into() },
            FromEngine::Confined { layers: "a\nb".into() },
            FromEngine::Outcome {
                exec: 1,
                outcome: ExecutionOutcome::Returned(Some("3".into())),
                tainted: false,
            },
            FromEngine::Outcome {
                exec: 1,
                outcome: ExecutionOutcome::Interrupted {
                    reason: InterruptReason::MemoryLimit,
                    detail: Some("d".into()),
                },
                tainted: true,
            },
        ];
        for message in from_engine {
            assert_eq!(FromEngine::decode(&message.to_frame()[4..]).unwrap(), message);
        }
    }

    #[test]
    fn frames_round_trip_and_corruption_is_an_error() {
        let mut buf = Vec::new();
        let frame = ToEngine::Interrupt { exec: 9, reason: InterruptReason::Timeout }.to_frame();
        write_frame(&mut buf, &frame).unwrap();
        write_frame(&mut buf, &FromEngine::Ready.to_frame()).unwrap();
        let mut input = buf.as_slice();
        assert_eq!(read_frame(&mut input).unwrap(), frame[4..]);
        assert_eq!(read_frame(&mut input).unwrap(), [10]);
        assert!(input.is_empty());
        assert!(FromEngine::decode(&[99]).is_err());
        assert!(ToEngine::decode(&[2, 1]).is_err());
        assert!(read_frame(&mut [0u8, 0, 0, 0x80].as_slice()).is_err());
    }
}
