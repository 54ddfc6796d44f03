//! Self-signed statements: what a peer says about itself, signed by its
//! identity, as one line of text that anyone can relay but nobody can
//! alter.
//!
//! The text is `PAYLOAD.SIGNATURE`, both unpadded base64url: the payload is
//! the statement in postcard, starting with the signer's peer id (32 raw
//! bytes), and the signature covers exactly the payload's bytes under the
//! statement's domain. The signature is checked before anything else of
//! the payload is decoded. Records ([`record`](crate::record)) and
//! heartbeats ([`heartbeat`](crate::heartbeat)) are such statements.

use serde::{Serialize, de::DeserializeOwned};

use crate::identity::{Keypair, PEER_ID_LEN, PeerId, SIGNATURE_LEN};
use crate::record::RecordError;

/// The longest text form of a payload of `max_payload` bytes.
pub const fn max_text_len(max_payload: usize) -> usize {
    (max_payload + SIGNATURE_LEN).div_ceil(3) * 4 + 1
}

/// Encodes and signs `value`, whose serialized form must start with the
/// signer's id.
pub(crate) fn seal<T: Serialize>(
    value: &T,
    keys: &Keypair,
    domain: &str,
    max_payload: usize,
) -> Result<String, RecordError> {
    let payload =
        postcard::to_allocvec(value).map_err(|_| RecordError::Malformed("not encodable"))?;
    if payload.len() > max_payload {
        return Err(RecordError::TooLarge(payload.len()));
    }
    if payload.get(..PEER_ID_LEN) != Some(keys.peer_id().as_bytes().as_slice()) {
        return Err(RecordError::NotTheSigner);
    }
    let signature = keys
        .sign(domain, &payload)
        .map_err(|_| RecordError::Malformed("not signable"))?;
    let b64 = &data_encoding::BASE64URL_NOPAD;
    Ok(format!(
        "{}.{}",
        b64.encode(&payload),
        b64.encode(&signature)
    ))
}

/// Checks the sizes and the signature of `text`, then decodes it.
pub(crate) fn open<T: DeserializeOwned>(
    text: &str,
    domain: &str,
    max_payload: usize,
) -> Result<T, RecordError> {
    if text.len() > max_text_len(max_payload) {
        return Err(RecordError::TooLarge(text.len()));
    }
    let (payload, signature) = text
        .split_once('.')
        .ok_or(RecordError::Malformed("expected PAYLOAD.SIGNATURE"))?;
    let b64 = &data_encoding::BASE64URL_NOPAD;
    let payload = b64
        .decode(payload.as_bytes())
        .map_err(|_| RecordError::Malformed("payload is not base64url"))?;
    let signature: [u8; SIGNATURE_LEN] = b64
        .decode(signature.as_bytes())
        .map_err(|_| RecordError::Malformed("signature is not base64url"))?
        .try_into()
        .map_err(|_| RecordError::Malformed("signature is not 64 bytes"))?;
    if payload.len() > max_payload {
        return Err(RecordError::TooLarge(payload.len()));
    }
    let signer = payload
        .get(..PEER_ID_LEN)
        .and_then(|id| PeerId::from_slice(id).ok())
        .ok_or(RecordError::Malformed("too short for a peer id"))?;
    signer
        .verify(domain, &payload, &signature)
        .map_err(|_| RecordError::BadSignature)?;
    let (value, rest): (T, _) = postcard::take_from_bytes(&payload)
        .map_err(|_| RecordError::Malformed("payload does not decode"))?;
    if !rest.is_empty() {
        return Err(RecordError::Malformed("trailing bytes in the payload"));
    }
    Ok(value)
}
