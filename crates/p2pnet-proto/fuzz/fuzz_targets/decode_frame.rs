//! Feeds arbitrary bytes to the frame decoder, one-shot and incremental.
//!
//! Checks: no panic; the incremental decoder never holds more than one
//! bounded frame; both paths agree on the first frame; every packet that
//! decodes re-encodes to a frame that decodes to the same packet.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pnet_proto::codec::{
    FRAME_HEADER_LEN, FrameDecoder, MAX_FRAME_SIZE_CEILING, decode_frame, encode_frame,
};

const MAX: u32 = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the split size for the incremental path.
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).max(1);

    let oneshot = decode_frame(stream, MAX);

    let mut decoder = FrameDecoder::new(MAX);
    let mut frames = Vec::new();
    'outer: for piece in stream.chunks(split) {
        let mut input = piece;
        while !input.is_empty() {
            match decoder.decode(&mut input) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => {}
                Err(_) => break 'outer,
            }
            assert!(decoder.buffered_len() <= FRAME_HEADER_LEN + MAX as usize);
        }
    }

    if let (Some(first), Ok((packet, _))) = (frames.first(), &oneshot) {
        assert_eq!(first.decode().as_ref(), Ok(packet));
    }

    for frame in &frames {
        if let Ok(packet) = frame.decode() {
            let bytes = encode_frame(&packet, MAX_FRAME_SIZE_CEILING)
                .expect("a decoded packet is valid and re-encodes");
            let (again, used) =
                decode_frame(&bytes, MAX_FRAME_SIZE_CEILING).expect("re-encoded frame decodes");
            assert_eq!(used, bytes.len());
            assert_eq!(again, packet);
        }
    }
});
