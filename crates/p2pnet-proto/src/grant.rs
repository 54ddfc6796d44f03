//! Grants: what a peer may send on an open channel, and until when.
//!
//! An open [`Channel`](crate::Channel) holds a bounded set of [`Grant`]s
//! ([`Grants`]). Each grant names [`Scopes`] (message, data, task, file,
//! peer list), an optional cap on file size, and an optional expiry on the
//! core clock ([`Instant`]). What the channel exchanges at a given moment
//! is the union of the grants still live then ([`Permissions`]). Grants
//! apply to both directions: the channel neither accepts nor sends a packet
//! whose scope no live grant holds.
//!
//! Control packets (Keepalive, Disconnect) need no scope: without them a
//! channel could neither stay alive nor close cleanly. A file transfer's
//! `Cancel` and `Reject` need none either once the channel is open (see
//! [`winds_down_transfer`]), so that a transfer whose grant is revoked or
//! expires can still be wound down by both sides.
//!
//! A grant is plain data: the runtime chooses ids, scopes and expiries and
//! hands the whole set to [`Channel::approve`](crate::Channel::approve) or
//! [`Channel::set_grants`](crate::Channel::set_grants); the channel expires
//! grants on its own clock and reports it
//! ([`ChannelEvent::GrantsExpired`](crate::ChannelEvent::GrantsExpired)).

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};
use std::str::FromStr;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::packet::{DataTransmission, FileMessage, Packet, PacketKind};
use crate::time::Instant;
use crate::trust::TrustLevel;

/// Most grants one channel holds. Bounds the work of every permission
/// check and the size of
/// [`ChannelEvent::GrantsExpired`](crate::ChannelEvent::GrantsExpired).
pub const MAX_GRANTS: usize = 16;

/// The longest scope name quoted back in a [`ScopeParseError`]: the input
/// may come from a config file or a command line, and an error message
/// should not carry an arbitrarily long string.
const MAX_QUOTED_WORD_LEN: usize = 64;

/// A set of packet scopes: what a peer may send.
///
/// | scope         | packets                                   |
/// |---------------|-------------------------------------------|
/// | `message`     | [`Packet::PureMessage`]                   |
/// | `data`        | [`DataTransmission::MiscData`]            |
/// | `task`        | [`DataTransmission::Task`]                |
/// | `file`        | [`DataTransmission::File`]                |
/// | `peer-list`   | [`Packet::Identifier`], [`Packet::CollectionShare`] |
///
/// Printed and parsed as a comma-separated list of those names
/// (`message,file`), `none` for the empty set; parsing also accepts `all`
/// and `none`, ignores case and whitespace around names. Serialized as a
/// sequence of names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

/// Every single scope with its name, in display order.
const NAMED: [(Scopes, &str); 6] = [
    (Scopes::MESSAGE, "message"),
    (Scopes::DATA, "data"),
    (Scopes::TASK, "task"),
    (Scopes::FILE, "file"),
    (Scopes::PEER_LIST, "peer-list"),
    (Scopes::PERF, "perf"),
];

impl Scopes {
    /// Nothing but control packets.
    pub const NONE: Self = Self(0);
    /// Text messages ([`Packet::PureMessage`]).
    pub const MESSAGE: Self = Self(1 << 0);
    /// Opaque application data ([`DataTransmission::MiscData`]).
    pub const DATA: Self = Self(1 << 1);
    /// Tasks ([`DataTransmission::Task`]).
    pub const TASK: Self = Self(1 << 2);
    /// File transfer ([`DataTransmission::File`]).
    pub const FILE: Self = Self(1 << 3);
    /// The sender's own contact information and lists of other peers
    /// ([`Packet::Identifier`], [`Packet::CollectionShare`]).
    pub const PEER_LIST: Self = Self(1 << 4);
    /// Speed tests ([`Packet::Perf`]): asking for one, and answering.
    pub const PERF: Self = Self(1 << 5);
    /// Every scope.
    pub const ALL: Self = Self(0b11_1111);

    /// Every single scope, in display order.
    pub(crate) const EACH: [Self; NAMED.len()] = [
        NAMED[0].0, NAMED[1].0, NAMED[2].0, NAMED[3].0, NAMED[4].0, NAMED[5].0,
    ];

    /// Whether every scope of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a scope.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The scopes in either.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The scopes in both.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The scopes in `self` but not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether this is [`Scopes::NONE`].
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the scopes in this set, in display order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMED
            .into_iter()
            .filter(move |(scope, _)| self.contains(*scope))
            .map(|(_, name)| name)
    }

    /// The one scope a decoded packet needs; `None` for control packets
    /// (Keepalive, Disconnect), which need none.
    ///
    /// A file `Cancel` or `Reject` needs [`Scopes::FILE`] like any file
    /// message; the channel lets it through without one (see
    /// [`winds_down_transfer`]).
    pub const fn for_packet(packet: &Packet) -> Option<Self> {
        Some(match packet {
            Packet::PureMessage(_) => Self::MESSAGE,
            Packet::DataTransmission(DataTransmission::MiscData(_)) => Self::DATA,
            Packet::DataTransmission(DataTransmission::Task(_)) => Self::TASK,
            Packet::DataTransmission(DataTransmission::File(_)) => Self::FILE,
            Packet::Identifier(_) | Packet::CollectionShare(_) => Self::PEER_LIST,
            Packet::Perf(_) => Self::PERF,
            Packet::Disconnect(_) | Packet::Keepalive(_) => return None,
        })
    }

    /// The scopes a frame of `kind` may need, known from its header before
    /// the body is decoded; `None` for control kinds. A packet of this kind
    /// needs exactly one of them ([`for_packet`](Self::for_packet)).
    pub const fn for_kind(kind: PacketKind) -> Option<Self> {
        Some(match kind {
            PacketKind::PureMessage => Self::MESSAGE,
            PacketKind::DataTransmission => Self::DATA.union(Self::TASK).union(Self::FILE),
            PacketKind::Identifier | PacketKind::CollectionShare => Self::PEER_LIST,
            PacketKind::Perf => Self::PERF,
            PacketKind::Disconnect | PacketKind::Keepalive => return None,
        })
    }

    /// Parses one name of the list syntax (see the type docs).
    fn parse_word(word: &str) -> Result<Self, ScopeParseError> {
        let word = word.trim();
        if word.is_empty() {
            return Err(ScopeParseError::Empty);
        }
        if word.eq_ignore_ascii_case("all") {
            return Ok(Self::ALL);
        }
        if word.eq_ignore_ascii_case("none") {
            return Ok(Self::NONE);
        }
        NAMED
            .iter()
            .find(|(_, name)| word.eq_ignore_ascii_case(name))
            .map(|(scope, _)| *scope)
            .ok_or_else(|| {
                ScopeParseError::Unknown(word.chars().take(MAX_QUOTED_WORD_LEN).collect())
            })
    }
}

/// Whether `packet` is a file transfer's `Cancel` or `Reject`.
///
/// These pass an open channel's grant gate in both directions whatever the
/// grants: when a grant holding [`Scopes::FILE`] is revoked or expires
/// mid-transfer, each side must still be able to tell the other that the
/// transfer is off, or both would wait on it until some timeout. They carry
/// no content, only a transfer id and a bounded reason; the runtime ignores
/// those for transfers it does not know.
pub const fn winds_down_transfer(packet: &Packet) -> bool {
    matches!(
        packet,
        Packet::DataTransmission(DataTransmission::File(
            FileMessage::Cancel(_) | FileMessage::Reject(_)
        ))
    )
}

impl BitOr for Scopes {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for Scopes {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

impl BitAnd for Scopes {
    type Output = Self;

    fn bitand(self, rhs: Self) -> Self {
        self.intersection(rhs)
    }
}

impl From<TrustLevel> for Scopes {
    /// The scopes the trust policy's preset stands for: default
    /// communication is [`Scopes::MESSAGE`], enhanced exchange everything
    /// else.
    fn from(level: TrustLevel) -> Self {
        let mut scopes = Self::NONE;
        if level.default_communication {
            scopes |= Self::MESSAGE;
        }
        if level.enhanced_exchange {
            scopes |= Self::ALL.difference(Self::MESSAGE);
        }
        scopes
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

impl FromStr for Scopes {
    type Err = ScopeParseError;

    fn from_str(s: &str) -> Result<Self, ScopeParseError> {
        s.split(',').try_fold(Self::NONE, |scopes, word| {
            Ok(scopes | Self::parse_word(word)?)
        })
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The length up front: formats such as postcard need it, and
        // `names()` (a filter) cannot tell it.
        let mut seq = serializer.serialize_seq(Some(self.names().count()))?;
        for name in self.names() {
            seq.serialize_element(name)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Scopes {
    /// Reads a sequence of names, rejecting unknown ones. The names are
    /// folded into the set as they come, so a long sequence costs no memory.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;

        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Scopes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of scope names (message, data, task, file, peer-list, all, none)",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scopes, A::Error> {
                let mut scopes = Scopes::NONE;
                while let Some(OneName(scope)) = seq.next_element()? {
                    scopes |= scope;
                }
                Ok(scopes)
            }
        }

        deserializer.deserialize_seq(ListVisitor)
    }
}

/// One element of a serialized [`Scopes`] list.
struct OneName(Scopes);

impl<'de> Deserialize<'de> for OneName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl Visitor<'_> for NameVisitor {
            type Value = OneName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scope name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<OneName, E> {
                Scopes::parse_word(name).map(OneName).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

/// Why a [`Scopes`] list did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeParseError {
    /// A name is not a scope (quoted as given, trimmed, at most 64
    /// characters).
    #[error("unknown scope `{0}`; expected message, data, task, file, peer-list, all or none")]
    Unknown(String),
    /// The list is empty or has an empty entry (`message,,file`).
    #[error("empty scope name; expected a comma-separated list such as `message,file`, or `none`")]
    Empty,
}

/// Identifies a grant within one channel. Chosen by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GrantId(pub u64);

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One permission: these scopes, optionally capped in file size, until an
/// optional expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grant {
    /// The grant's id, unique within its [`Grants`].
    pub id: GrantId,
    /// What it permits.
    pub scopes: Scopes,
    /// Largest file, in bytes, the runtime accepts under this grant; `None`
    /// is unlimited. Only meaningful with [`Scopes::FILE`]. The channel
    /// does not enforce it (it never sees a file whole): the runtime passes
    /// [`Permissions::max_file_size`] to
    /// [`FileReceiver::new`](crate::transfer::FileReceiver::new).
    pub max_file_size: Option<u64>,
    /// When it stops, on the core clock; `None` is never. A grant is live
    /// strictly before this instant.
    pub expires_at: Option<Instant>,
}

impl Grant {
    /// A grant of `scopes` with no file size cap that never expires.
    pub const fn new(id: GrantId, scopes: Scopes) -> Self {
        Self {
            id,
            scopes,
            max_file_size: None,
            expires_at: None,
        }
    }

    /// This grant, ending at `expires_at`.
    pub const fn with_expiry(self, expires_at: Instant) -> Self {
        Self {
            expires_at: Some(expires_at),
            ..self
        }
    }

    /// This grant, with files capped at `max_file_size` bytes.
    pub const fn with_max_file_size(self, max_file_size: u64) -> Self {
        Self {
            max_file_size: Some(max_file_size),
            ..self
        }
    }

    /// Whether the grant is in force at `now`.
    pub fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// What a set of grants adds up to at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions {
    /// The union of the live grants' scopes.
    pub scopes: Scopes,
    /// The largest file size cap among the live grants that hold
    /// [`Scopes::FILE`]. `None` when one of them has no cap (unlimited),
    /// and also when none holds `FILE`: read it only when `scopes` contains
    /// `FILE`.
    pub max_file_size: Option<u64>,
}

impl Permissions {
    /// Nothing but control packets.
    pub const NONE: Self = Self {
        scopes: Scopes::NONE,
        max_file_size: None,
    };

    /// Whether `packet` may be exchanged: control packets and transfer
    /// wind-downs ([`winds_down_transfer`]) always, others when their scope
    /// ([`Scopes::for_packet`]) is held.
    pub fn permits(&self, packet: &Packet) -> bool {
        match Scopes::for_packet(packet) {
            None => true,
            Some(needed) => self.scopes.contains(needed) || winds_down_transfer(packet),
        }
    }
}

/// The grants of one channel: at most [`MAX_GRANTS`], ids unique.
///
/// Kept sorted by id, so iteration order, [`expire`](Self::expire)'s
/// result and therefore the channel's events depend only on the inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Sorted by id, ids unique, at most `MAX_GRANTS` long.
    by_id: Vec<Grant>,
}

impl Grants {
    /// No grants: control packets only.
    pub const fn new() -> Self {
        Self { by_id: Vec::new() }
    }

    /// Just `grant`.
    pub fn single(grant: Grant) -> Self {
        Self { by_id: vec![grant] }
    }

    /// Adds `grant`, replacing the grant with the same id if there is one.
    ///
    /// Fails with [`Error::TooManyGrants`] if the set already holds
    /// [`MAX_GRANTS`] grants with other ids.
    pub fn insert(&mut self, grant: Grant) -> Result<(), Error> {
        match self.by_id.binary_search_by_key(&grant.id, |g| g.id) {
            Ok(at) => self.by_id[at] = grant,
            Err(_) if self.by_id.len() >= MAX_GRANTS => {
                return Err(Error::TooManyGrants { limit: MAX_GRANTS });
            }
            Err(at) => self.by_id.insert(at, grant),
        }
        Ok(())
    }

    /// Removes the grant `id`; returns whether there was one.
    pub fn revoke(&mut self, id: GrantId) -> bool {
        match self.by_id.binary_search_by_key(&id, |g| g.id) {
            Ok(at) => {
                self.by_id.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// The grant `id`, if present.
    pub fn get(&self, id: GrantId) -> Option<&Grant> {
        self.by_id
            .binary_search_by_key(&id, |g| g.id)
            .ok()
            .map(|at| &self.by_id[at])
    }

    /// Removes the grants that are no longer live at `now` (`expires_at <=
    /// now`) and returns their ids, in id order.
    pub fn expire(&mut self, now: Instant) -> Vec<GrantId> {
        let expired = self
            .by_id
            .iter()
            .filter(|g| !g.is_live(now))
            .map(|g| g.id)
            .collect();
        self.by_id.retain(|g| g.is_live(now));
        expired
    }

    /// What the grants live at `now` add up to. Grants past their expiry
    /// count for nothing, whether or not [`expire`](Self::expire) has
    /// removed them yet.
    pub fn permissions(&self, now: Instant) -> Permissions {
        let mut scopes = Scopes::NONE;
        let mut largest_file_cap = None;
        let mut unlimited_file = false;
        for grant in self.by_id.iter().filter(|g| g.is_live(now)) {
            scopes |= grant.scopes;
            if grant.scopes.contains(Scopes::FILE) {
                match grant.max_file_size {
                    None => unlimited_file = true,
                    Some(cap) => largest_file_cap = largest_file_cap.max(Some(cap)),
                }
            }
        }
        Permissions {
            scopes,
            max_file_size: if unlimited_file {
                None
            } else {
                largest_file_cap
            },
        }
    }

    /// The earliest expiry among the grants, if any expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_id.iter().filter_map(|g| g.expires_at).min()
    }

    /// The grants, in id order.
    pub fn iter(&self) -> std::slice::Iter<'_, Grant> {
        self.by_id.iter()
    }

    /// How many grants there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl<'a> IntoIterator for &'a Grants {
    type Item = &'a Grant;
    type IntoIter = std::slice::Iter<'a, Grant>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde::de::value::{Error as ValueError, SeqDeserializer};

    use super::*;
    use crate::PeerId;
    use crate::packet::{
        CollectionShare, ContentHash, Disconnect, DisconnectReason, FileCancel, FileChunk,
        FileName, FileOffer, FileReject, Identifier, Keepalive, Payload, PureMessage, TransferId,
    };

    fn at(secs: u64) -> Instant {
        Instant::from_duration(Duration::from_secs(secs))
    }

    fn grant(id: u64, scopes: Scopes) -> Grant {
        Grant::new(GrantId(id), scopes)
    }

    #[test]
    fn set_operations() {
        let mf = Scopes::MESSAGE | Scopes::FILE;
        assert!(mf.contains(Scopes::FILE) && mf.contains(Scopes::NONE));
        assert!(!mf.contains(Scopes::FILE | Scopes::TASK));
        assert!(mf.intersects(Scopes::FILE | Scopes::TASK));
        assert!(!mf.intersects(Scopes::TASK));
        assert_eq!(mf & (Scopes::FILE | Scopes::TASK), Scopes::FILE);
        assert_eq!(mf.difference(Scopes::MESSAGE), Scopes::FILE);
        assert_eq!(mf.union(Scopes::TASK), mf | Scopes::TASK);
        assert!(Scopes::NONE.is_empty() && !Scopes::ALL.is_empty());
        assert_eq!(
            Scopes::EACH.into_iter().fold(Scopes::NONE, Scopes::union),
            Scopes::ALL
        );
        assert_eq!(Scopes::default(), Scopes::NONE);
    }

    #[test]
    fn display_names_in_a_fixed_order() {
        let cases = [
            (Scopes::NONE, "none"),
            (Scopes::ALL, "message,data,task,file,peer-list,perf"),
            (Scopes::PEER_LIST | Scopes::MESSAGE, "message,peer-list"),
            (Scopes::FILE, "file"),
        ];
        for (scopes, text) in cases {
            assert_eq!(scopes.to_string(), text);
            assert_eq!(text.parse::<Scopes>(), Ok(scopes));
        }
        assert_eq!(format!("{:?}", Scopes::TASK), "Scopes(task)");
    }

    #[test]
    fn display_and_parse_round_trip_every_set() {
        for bits in 0..=Scopes::ALL.0 {
            let scopes = Scopes(bits);
            assert_eq!(scopes.to_string().parse::<Scopes>(), Ok(scopes));
            assert_eq!(scopes.names().count(), bits.count_ones() as usize);
        }
    }

    #[test]
    fn parse_is_lenient_about_case_whitespace_all_and_none() {
        let cases = [
            (" Message , FILE ", Scopes::MESSAGE | Scopes::FILE),
            ("all", Scopes::ALL),
            ("ALL,message", Scopes::ALL),
            ("none", Scopes::NONE),
            ("none,task", Scopes::TASK),
            ("peer-list,peer-list", Scopes::PEER_LIST),
        ];
        for (text, scopes) in cases {
            assert_eq!(text.parse::<Scopes>(), Ok(scopes), "{text:?}");
        }
    }

    #[test]
    fn parse_errors_name_the_bad_word() {
        let unknown = |w: &str| Err(ScopeParseError::Unknown(w.into()));
        let cases = [
            ("message,files", unknown("files")),
            ("peer_list", unknown("peer_list")),
            ("message file", unknown("message file")),
            ("", Err(ScopeParseError::Empty)),
            ("message,,file", Err(ScopeParseError::Empty)),
            ("message,", Err(ScopeParseError::Empty)),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Scopes>(), expected, "{text:?}");
        }
        let err = "message, bogus".parse::<Scopes>().unwrap_err();
        assert!(err.to_string().contains("`bogus`"), "{err}");
        let long = "x".repeat(1000);
        assert_eq!(
            long.parse::<Scopes>(),
            Err(ScopeParseError::Unknown("x".repeat(MAX_QUOTED_WORD_LEN)))
        );
        assert_eq!(
            Error::from(ScopeParseError::Empty),
            Error::Scopes(ScopeParseError::Empty)
        );
    }

    fn from_names(names: &[&str]) -> Result<Scopes, ValueError> {
        let seq: SeqDeserializer<_, ValueError> = SeqDeserializer::new(names.iter().copied());
        Scopes::deserialize(seq)
    }

    #[test]
    fn serde_is_a_list_of_names() {
        assert_eq!(
            from_names(&["file", "message"]),
            Ok(Scopes::MESSAGE | Scopes::FILE)
        );
        assert_eq!(from_names(&[]), Ok(Scopes::NONE));
        assert_eq!(from_names(&["all"]), Ok(Scopes::ALL));
        let err = from_names(&["message", "telepathy"]).unwrap_err();
        assert!(err.to_string().contains("`telepathy`"), "{err}");

        // Through a real format: the names go on the wire, not the bits.
        for scopes in [Scopes::NONE, Scopes::TASK | Scopes::PEER_LIST, Scopes::ALL] {
            let bytes = postcard::to_allocvec(&scopes).unwrap();
            let names: Vec<String> = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(names, scopes.names().collect::<Vec<_>>());
            assert_eq!(postcard::from_bytes::<Scopes>(&bytes), Ok(scopes));
        }
        let bytes = postcard::to_allocvec(&vec!["data", "nope"]).unwrap();
        assert!(postcard::from_bytes::<Scopes>(&bytes).is_err());
    }

    #[test]
    fn grant_ids_serialize_as_numbers() {
        let bytes = postcard::to_allocvec(&GrantId(300)).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&300u64).unwrap());
        assert_eq!(postcard::from_bytes::<GrantId>(&bytes), Ok(GrantId(300)));
        assert_eq!(GrantId(7).to_string(), "7");
    }

    #[test]
    fn each_packet_needs_exactly_its_scope() {
        let file = |m| Packet::DataTransmission(DataTransmission::File(m));
        let name = FileName::new("f").unwrap();
        let cases: [(Packet, Option<Scopes>); 11] = [
            (PureMessage::new("hi").into(), Some(Scopes::MESSAGE)),
            (
                DataTransmission::MiscData(Payload::new(vec![1])).into(),
                Some(Scopes::DATA),
            ),
            (
                DataTransmission::Task(Payload::new(vec![2])).into(),
                Some(Scopes::TASK),
            ),
            (
                file(FileMessage::Offer(FileOffer {
                    transfer_id: TransferId(1),
                    name,
                    size: 1,
                    chunk_size: 1,
                    hash: ContentHash([0; 32]),
                })),
                Some(Scopes::FILE),
            ),
            (
                file(FileMessage::Chunk(FileChunk {
                    transfer_id: TransferId(1),
                    offset: 0,
                    data: vec![0],
                })),
                Some(Scopes::FILE),
            ),
            (
                file(FileMessage::Cancel(FileCancel {
                    transfer_id: TransferId(1),
                    reason: None,
                })),
                Some(Scopes::FILE),
            ),
            (
                file(FileMessage::Reject(FileReject {
                    transfer_id: TransferId(1),
                    reason: String::new(),
                })),
                Some(Scopes::FILE),
            ),
            (
                Identifier {
                    peer_id: PeerId::from_bytes([1; 32]),
                    listening_port: 1,
                    addresses: vec![],
                }
                .into(),
                Some(Scopes::PEER_LIST),
            ),
            (
                CollectionShare { peers: vec![] }.into(),
                Some(Scopes::PEER_LIST),
            ),
            (Keepalive::Ping(1).into(), None),
            (Disconnect::new(DisconnectReason::Normal).into(), None),
        ];
        for (packet, scope) in cases {
            assert_eq!(Scopes::for_packet(&packet), scope, "{packet:?}");
            let coarse = Scopes::for_kind(packet.kind());
            match scope {
                Some(scope) => assert!(coarse.is_some_and(|c| c.contains(scope))),
                None => assert_eq!(coarse, None),
            }
            let wind_down = winds_down_transfer(&packet);
            for bits in 0..=Scopes::ALL.0 {
                let permissions = Permissions {
                    scopes: Scopes(bits),
                    max_file_size: None,
                };
                let expected = scope.is_none_or(|s| Scopes(bits).contains(s)) || wind_down;
                assert_eq!(permissions.permits(&packet), expected, "{packet:?} {bits}");
            }
        }
    }

    #[test]
    fn trust_levels_map_to_scopes() {
        assert_eq!(Scopes::from(TrustLevel::NONE), Scopes::NONE);
        assert_eq!(Scopes::from(TrustLevel::DEFAULT), Scopes::MESSAGE);
        assert_eq!(Scopes::from(TrustLevel::ELEVATED), Scopes::ALL);
        let enhanced_only = TrustLevel {
            default_communication: false,
            enhanced_exchange: true,
        };
        assert_eq!(
            Scopes::from(enhanced_only),
            Scopes::ALL.difference(Scopes::MESSAGE)
        );
    }

    #[test]
    fn insert_replaces_by_id_and_is_bounded() {
        let mut grants = Grants::new();
        for id in (0..MAX_GRANTS as u64).rev() {
            grants.insert(grant(id, Scopes::MESSAGE)).unwrap();
        }
        assert_eq!(grants.len(), MAX_GRANTS);
        assert!(grants.iter().map(|g| g.id).is_sorted());
        assert_eq!(
            grants.insert(grant(99, Scopes::FILE)),
            Err(Error::TooManyGrants { limit: MAX_GRANTS })
        );
        // Replacing an existing id is fine even when full.
        grants.insert(grant(3, Scopes::FILE)).unwrap();
        assert_eq!(grants.len(), MAX_GRANTS);
        assert_eq!(grants.get(GrantId(3)).map(|g| g.scopes), Some(Scopes::FILE));
        assert!(grants.revoke(GrantId(3)));
        assert!(!grants.revoke(GrantId(3)));
        grants.insert(grant(99, Scopes::FILE)).unwrap();
        assert_eq!(grants.iter().last().map(|g| g.id), Some(GrantId(99)));
        assert_eq!((&grants).into_iter().count(), MAX_GRANTS);
    }

    #[test]
    fn expiry_is_exclusive_and_reported_in_id_order() {
        let mut grants = Grants::new();
        grants
            .insert(grant(2, Scopes::FILE).with_expiry(at(10)))
            .unwrap();
        grants
            .insert(grant(1, Scopes::TASK).with_expiry(at(10)))
            .unwrap();
        grants
            .insert(grant(3, Scopes::MESSAGE).with_expiry(at(20)))
            .unwrap();
        grants.insert(grant(4, Scopes::DATA)).unwrap();
        assert_eq!(grants.next_expiry(), Some(at(10)));
        let before = grants.permissions(at(9) + Duration::from_nanos(999_999_999));
        assert_eq!(
            before.scopes,
            Scopes::ALL.difference(Scopes::PEER_LIST | Scopes::PERF)
        );
        // Not live *at* the expiry, even before `expire` runs.
        assert_eq!(
            grants.permissions(at(10)).scopes,
            Scopes::MESSAGE | Scopes::DATA
        );
        assert_eq!(grants.expire(at(9)), vec![]);
        assert_eq!(grants.expire(at(10)), vec![GrantId(1), GrantId(2)]);
        assert_eq!(grants.next_expiry(), Some(at(20)));
        assert_eq!(grants.expire(at(100)), vec![GrantId(3)]);
        assert_eq!(grants.next_expiry(), None);
        assert_eq!(grants.permissions(at(1000)).scopes, Scopes::DATA);
    }

    #[test]
    fn file_cap_is_the_largest_and_unlimited_wins() {
        let capped = |id, cap| grant(id, Scopes::FILE).with_max_file_size(cap);
        let cases: [(&[Grant], Option<u64>); 5] = [
            (&[], None),
            (&[capped(1, 10)], Some(10)),
            (&[capped(1, 10), capped(2, 30), capped(3, 20)], Some(30)),
            (&[capped(1, 10), grant(2, Scopes::FILE)], None),
            // A cap on a grant without FILE does not count.
            (
                &[capped(1, 10), grant(2, Scopes::DATA).with_max_file_size(99)],
                Some(10),
            ),
        ];
        for (list, expected) in cases {
            let mut grants = Grants::new();
            for g in list {
                grants.insert(*g).unwrap();
            }
            assert_eq!(
                grants.permissions(at(0)).max_file_size,
                expected,
                "{list:?}"
            );
        }
        // An expired unlimited grant no longer lifts the cap.
        let mut grants = Grants::single(grant(1, Scopes::FILE).with_expiry(at(5)));
        grants.insert(capped(2, 7)).unwrap();
        assert_eq!(grants.permissions(at(4)).max_file_size, None);
        assert_eq!(grants.permissions(at(5)).max_file_size, Some(7));
    }

    fn arb_grant() -> impl Strategy<Value = Grant> {
        (
            0u64..24,
            0..=Scopes::ALL.0,
            proptest::option::of(0u64..1000),
            proptest::option::of(0u64..100),
        )
            .prop_map(|(id, bits, cap, expiry)| Grant {
                id: GrantId(id),
                scopes: Scopes(bits),
                max_file_size: cap,
                expires_at: expiry.map(at),
            })
    }

    proptest! {
        #[test]
        fn permissions_are_the_union_of_live_grants(
            list in proptest::collection::vec(arb_grant(), 0..=MAX_GRANTS),
            now in 0u64..110,
        ) {
            let now = at(now);
            let mut grants = Grants::new();
            for g in &list {
                grants.insert(*g).unwrap();
            }
            // The reference: last insert per id wins, then a plain fold.
            let mut latest = std::collections::BTreeMap::new();
            for g in &list {
                latest.insert(g.id, *g);
            }
            let live: Vec<Grant> = latest
                .values()
                .filter(|g| g.expires_at.is_none_or(|t| t > now))
                .copied()
                .collect();
            let scopes = live.iter().fold(Scopes::NONE, |s, g| s | g.scopes);
            let file_caps: Vec<Option<u64>> = live
                .iter()
                .filter(|g| g.scopes.contains(Scopes::FILE))
                .map(|g| g.max_file_size)
                .collect();
            let cap = if file_caps.contains(&None) {
                None
            } else {
                file_caps.into_iter().flatten().max()
            };
            prop_assert_eq!(
                grants.permissions(now),
                Permissions { scopes, max_file_size: cap }
            );
            // Expiring changes nothing about what is live.
            let mut expired = grants.clone();
            let gone = expired.expire(now);
            prop_assert_eq!(expired.permissions(now), grants.permissions(now));
            prop_assert_eq!(expired.len() + gone.len(), latest.len());
            prop_assert!(expired.next_expiry().is_none_or(|t| t > now));
        }
    }
}
