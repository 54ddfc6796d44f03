//! The sealed messages a channel actor has yet to write: taken from the
//! channel whole, written with vectored writes, and handed back to the
//! channel once written so later frames are encoded into them.

use std::collections::VecDeque;
use std::io::IoSlice;

/// Most buffers gathered into one vectored write.
pub(super) const MAX_WRITE_SLICES: usize = 8;

#[derive(Debug, Default)]
pub(super) struct WriteQueue {
    messages: VecDeque<Vec<u8>>,
    /// Bytes of the front message already written.
    written: usize,
    /// Bytes not yet written.
    bytes: usize,
}

impl WriteQueue {
    pub(super) fn push(&mut self, message: Vec<u8>) {
        self.bytes += message.len();
        self.messages.push_back(message);
    }

    /// Bytes left to write.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Fills `slices` with what is left to write, front first; returns how
    /// many it filled.
    pub(super) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_WRITE_SLICES]) -> usize {
        let mut count = 0;
        for (i, message) in self.messages.iter().take(MAX_WRITE_SLICES).enumerate() {
            let from = if i == 0 { self.written } else { 0 };
            slices[i] = IoSlice::new(&message[from..]);
            count = i + 1;
        }
        count
    }

    /// Records `n` bytes written; each message written whole goes to
    /// `done`.
    pub(super) fn advance(&mut self, mut n: usize, mut done: impl FnMut(Vec<u8>)) {
        self.bytes -= n.min(self.bytes);
        while n > 0 {
            let Some(front) = self.messages.front() else {
                break;
            };
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            if let Some(message) = self.messages.pop_front() {
                done(message);
            }
        }
    }

    /// Drops everything left (the socket is dead); each buffer goes to
    /// `done`.
    pub(super) fn clear(&mut self, done: impl FnMut(Vec<u8>)) {
        self.messages.drain(..).for_each(done);
        self.written = 0;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_resume_where_they_stopped_and_whole_messages_come_back() {
        let mut queue = WriteQueue::default();
        for (len, fill) in [(3, b'a'), (4, b'b'), (2, b'c')] {
            queue.push(vec![fill; len]);
        }
        assert_eq!(queue.bytes(), 9);
        let mut back = Vec::new();
        let mut written = Vec::new();
        for n in [2, 3, 1, 3] {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
            let count = queue.slices(&mut slices);
            let flat: Vec<u8> = slices[..count].iter().flat_map(|s| s.to_vec()).collect();
            written.extend_from_slice(&flat[..n]);
            queue.advance(n, |m| back.push(m));
        }
        assert_eq!(written, b"aaabbbbcc");
        assert!(queue.is_empty());
        assert_eq!(back.len(), 3, "every buffer comes back once written");
        queue.push(vec![1; 5]);
        queue.clear(|m| back.push(m));
        assert!(queue.is_empty());
        assert_eq!(back.len(), 4);
    }

    #[test]
    fn a_vectored_write_gathers_at_most_the_bound() {
        let mut queue = WriteQueue::default();
        for _ in 0..MAX_WRITE_SLICES + 3 {
            queue.push(vec![0; 2]);
        }
        let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
        assert_eq!(queue.slices(&mut slices), MAX_WRITE_SLICES);
    }
}
