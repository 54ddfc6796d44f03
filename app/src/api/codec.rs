//! The server functions' JSON, decoded the way hydration decodes it.
//!
//! A page's `Resource` data reaches the browser twice: rendered into the
//! page (hydration reads it with `serde_json::from_str`) and from later
//! calls (server_fn's `Json` reads it with `serde_json::from_slice`).
//! serde_json compiles its deserializer once per reader and type, so every
//! type the panel fetches would be in the wasm twice. [`JsonText`] reads
//! responses as text, so one copy serves both; the bytes on the wire are
//! the same JSON.

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use server_fn::{ContentType, Decodes, Encodes, Format, FormatType, Http, codec::Post};

/// JSON, decoded from text (see the module docs).
pub struct JsonText;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text =
            std::str::from_utf8(&bytes).map_err(<serde_json::Error as serde::de::Error>::custom)?;
        serde_json::from_str(text)
    }
}

/// Arguments as a url-encoded form (server_fn's default), answers as
/// [`JsonText`].
pub type FormInJsonOut = Http<server_fn::codec::PostUrl, Post<JsonText>>;
/// Arguments and answers as JSON.
pub type JsonInJsonOut = Http<Post<JsonText>, Post<JsonText>>;
