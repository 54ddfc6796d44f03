//! Bounded per-session transcripts of terminal input and output.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use app::api::{TerminalLine, TerminalLineKind};

/// Lines kept per session; older lines are dropped.
const LINES_PER_SESSION: usize = 500;
/// Sessions with a transcript; the least recently used is dropped beyond this.
const MAX_SESSIONS: usize = 256;

/// Identifies a transcript: the session's token hash.
pub type TranscriptKey = String;

/// All transcripts, bounded in sessions and lines.
#[derive(Debug, Default)]
pub struct Transcripts {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<TranscriptKey, Transcript>,
    clock: u64,
}

#[derive(Debug, Default)]
struct Transcript {
    lines: VecDeque<TerminalLine>,
    next_seq: u64,
    last_used: u64,
}

impl Transcripts {
    /// Appends lines to `key`'s transcript; returns them as stored and the
    /// sequence number to poll from next.
    pub fn push(
        &self,
        key: &str,
        lines: impl IntoIterator<Item = (TerminalLineKind, String)>,
    ) -> (Vec<TerminalLine>, u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        if !inner.sessions.contains_key(key) && inner.sessions.len() >= MAX_SESSIONS {
            let oldest = inner
                .sessions
                .iter()
                .min_by_key(|(_, t)| t.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                inner.sessions.remove(&oldest);
            }
        }
        let transcript = inner.sessions.entry(key.to_owned()).or_default();
        transcript.last_used = now;
        let mut added = Vec::new();
        for (kind, text) in lines {
            transcript.next_seq += 1;
            let line = TerminalLine {
                seq: transcript.next_seq,
                kind,
                text,
            };
            added.push(line.clone());
            transcript.lines.push_back(line);
            if transcript.lines.len() > LINES_PER_SESSION {
                transcript.lines.pop_front();
            }
        }
        (added, transcript.next_seq)
    }

    /// Lines of `key`'s transcript after `after`, and the sequence to poll from next.
    pub fn since(&self, key: &str, after: u64) -> (Vec<TerminalLine>, u64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.sessions.get(key) {
            Some(t) => (
                t.lines.iter().filter(|l| l.seq > after).cloned().collect(),
                t.next_seq.max(after),
            ),
            None => (Vec::new(), after),
        }
    }

    /// Forgets `key`'s transcript (at logout).
    pub fn remove(&self, key: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sessions
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str) -> (TerminalLineKind, String) {
        (TerminalLineKind::Output, text.to_owned())
    }

    #[test]
    fn polling_returns_only_new_lines() {
        let t = Transcripts::default();
        let (added, after_push) = t.push("s", [out("a"), out("b")]);
        assert_eq!(added.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(after_push, 2);
        let (lines, next) = t.since("s", 0);
        assert_eq!(
            lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(next, 2);
        t.push("s", [out("c")]);
        let (lines, next) = t.since("s", next);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].text.as_str(), lines[0].seq, next), ("c", 3, 3));
        assert_eq!(t.since("other", 0), (Vec::new(), 0));
    }

    #[test]
    fn lines_and_sessions_are_bounded() {
        let t = Transcripts::default();
        t.push(
            "s",
            (0..LINES_PER_SESSION + 10).map(|i| out(&i.to_string())),
        );
        let (lines, next) = t.since("s", 0);
        assert_eq!(lines.len(), LINES_PER_SESSION);
        assert_eq!(lines[0].text, "10", "oldest lines dropped first");
        assert_eq!(next, (LINES_PER_SESSION + 10) as u64);

        for i in 0..MAX_SESSIONS {
            t.push(&format!("k{i}"), [out("x")]);
        }
        // "s" was used least recently and made room.
        assert!(t.since("s", 0).0.is_empty());
        assert_eq!(t.since("k0", 0).0.len(), 1);
    }
}
