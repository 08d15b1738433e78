//! The Redis store's packed session record, read on the Rust side (access-token checks, session
//! lists, and tools that look behind the application's back). `lua/records.lua` writes the
//! layout down byte by byte and is the only writer; this is its only other reader. Depends on
//! `domain` only.

use crate::domain::Jti;

use super::RefreshClaims;

// The flags of a record (the layout is written down in lua/records.lua).
const REVOKED: u8 = 1;
const BROWSER: u8 = 2;
const HAS_END: u8 = 8;

/// A jti or session id as the Redis store writes it: 32 lowercase hex characters (every id this
/// server mints, and SimpleJWT's `uuid4().hex`) as their 16 bytes; any other id (at most 64
/// characters, `domain` sees to that) as its text, padded with NUL bytes to 17 when shorter, so
/// that only a packed hex id is 16 bytes long. Ids never hold a NUL.
pub fn pack_id(id: &str) -> Vec<u8> {
    let b = id.as_bytes();
    if b.len() == 32 && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        let nibble = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
        return b
            .chunks(2)
            .map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]))
            .collect();
    }
    let mut out = b.to_vec();
    out.resize(b.len().max(17), 0);
    out
}

/// The id `pack_id` packed into `b`.
pub fn unpack_id(b: &[u8]) -> Option<String> {
    if b.len() == 16 {
        return Some(b.iter().map(|byte| format!("{byte:02x}")).collect());
    }
    let text = &b[..b.iter().position(|c| *c == 0).unwrap_or(b.len())];
    String::from_utf8(text.to_vec())
        .ok()
        .filter(|t| !t.is_empty())
}

/// One session record, as `lua/records.lua` wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub revoked: bool,
    /// When the record may go (ms); past it, the record is as good as gone.
    pub keep_ms: u64,
    /// What an ended session no longer keeps is empty or zero below.
    pub created_ms: u64,
    pub last_refreshed_ms: Option<u64>,
    pub current: Option<Jti>,
    pub pending: Option<RefreshClaims>,
    /// The absolute end (s).
    pub end: Option<u64>,
    /// False for browser-session cookies ("remember me" off).
    pub remember: bool,
    /// Jtis retired within their reuse interval, and when (ms).
    pub retired: Vec<(Jti, u64)>,
    pub client_address: String,
    pub user_agent: String,
}

/// A reader of big-endian integers and packed ids.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn int(&mut self, n: usize) -> Option<u64> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head.iter().fold(0, |v, b| v << 8 | u64::from(*b)))
    }

    /// An id's packed bytes, after their length (one byte).
    fn id(&mut self) -> Option<&'a [u8]> {
        let n = self.int(1)? as usize;
        let (packed, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(packed)
    }

    fn jti(&mut self) -> Option<Jti> {
        Jti::parse(&unpack_id(self.id()?)?)
    }

    fn text(&mut self, n: usize) -> Option<String> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(String::from_utf8_lossy(head).into_owned())
    }
}

impl SessionRecord {
    /// None when the bytes are not a record of this layout.
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let mut b = Bytes(raw);
        if b.int(1)? != 1 {
            return None;
        }
        let flags = b.int(1)? as u8;
        let keep_ms = b.int(6)?;
        let mut record = SessionRecord {
            revoked: flags & REVOKED != 0,
            keep_ms,
            created_ms: 0,
            last_refreshed_ms: None,
            current: None,
            pending: None,
            end: None,
            remember: flags & BROWSER == 0,
            retired: Vec::new(),
            client_address: String::new(),
            user_agent: String::new(),
        };
        if record.revoked {
            return b.0.is_empty().then_some(record);
        }
        record.last_refreshed_ms = Some(b.int(6)?).filter(|ms| *ms > 0);
        record.current = Some(b.jti()?);
        let pending = b.id()?;
        let (iat, exp) = (b.int(5)?, b.int(5)?);
        if !pending.is_empty() {
            record.pending = Some(RefreshClaims {
                jti: Jti::parse(&unpack_id(pending)?)?,
                iat,
                exp,
            });
        }
        for _ in 0..b.int(1)? {
            let at = b.int(6)?;
            record.retired.push((b.jti()?, at));
        }
        record.created_ms = b.int(6)?;
        if flags & HAS_END != 0 {
            record.end = Some(b.int(5)?);
        }
        let address_len = b.int(1)? as usize;
        record.client_address = b.text(address_len)?;
        record.user_agent = String::from_utf8_lossy(b.0).into_owned();
        Some(record)
    }

    /// Whether `jti` is one of the session's live tokens (its current or pending one).
    pub fn holds(&self, jti: &Jti) -> bool {
        self.current.as_ref() == Some(jti) || self.pending.as_ref().is_some_and(|p| p.jti == *jti)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_pack_into_sixteen_bytes_and_others_keep_their_text() {
        let hex = "0123456789abcdef0123456789abcdef";
        let packed = pack_id(hex);
        assert_eq!(packed.len(), 16);
        assert_eq!(unpack_id(&packed).as_deref(), Some(hex));
        let upper = "0123456789ABCDEF0123456789ABCDEF";
        assert_eq!(pack_id(upper), upper.as_bytes());
        let sixteen = "0123456789abcdef";
        for other in [upper, sixteen, "42", "a-b_c.d@e+f", &"x".repeat(64)] {
            let packed = pack_id(other);
            assert_ne!(packed.len(), 16, "{other}");
            assert!(packed.len() >= 17);
            assert_eq!(unpack_id(&packed).as_deref(), Some(other));
        }
    }

    /// The bytes `lua/records.lua` writes for a live session with a pending successor, an
    /// absolute end, one retirement, an address and a user agent (written out by hand).
    #[test]
    fn a_record_reads_back_every_field() {
        let cur = "00112233445566778899aabbccddeeff";
        let pend = "ffeeddccbbaa99887766554433221100";
        let int = |v: u64, n: usize| v.to_be_bytes()[8 - n..].to_vec();
        let id = |text: &str| {
            let packed = pack_id(text);
            [vec![packed.len() as u8], packed].concat()
        };
        let raw = [
            vec![1, BROWSER | HAS_END],
            int(1_800_000_000_000, 6),
            int(0, 6),
            id(cur),
            id(pend),
            int(1_700_000_100, 5),
            int(1_700_086_500, 5),
            vec![1],
            int(1_700_000_050_000, 6),
            id("old"),
            int(1_700_000_000_123, 6),
            int(1_790_000_000, 5),
            vec![9],
            b"127.0.0.1".to_vec(),
            "Firefox \u{1f98a}".as_bytes().to_vec(),
        ]
        .concat();
        let r = SessionRecord::decode(&raw).unwrap();
        assert!(!r.revoked && !r.remember);
        assert_eq!(r.keep_ms, 1_800_000_000_000);
        assert_eq!(
            (r.created_ms, r.last_refreshed_ms),
            (1_700_000_000_123, None)
        );
        assert_eq!(r.current, Jti::parse(cur));
        let p = r.pending.clone().unwrap();
        assert_eq!(
            (p.jti.as_str(), p.iat, p.exp),
            (pend, 1_700_000_100, 1_700_086_500)
        );
        assert_eq!(r.end, Some(1_790_000_000));
        assert_eq!(
            r.retired,
            vec![(Jti::parse("old").unwrap(), 1_700_000_050_000)]
        );
        assert_eq!(r.client_address, "127.0.0.1");
        assert_eq!(r.user_agent, "Firefox \u{1f98a}");
        assert!(r.holds(&Jti::parse(cur).unwrap()) && r.holds(&p.jti));
        assert!(!r.holds(&Jti::parse("old").unwrap()));

        let ended = [1, REVOKED | BROWSER, 0, 0, 0, 0, 0, 9];
        let r = SessionRecord::decode(&ended).unwrap();
        assert!(r.revoked && r.current.is_none());
        assert_eq!(r.keep_ms, 9);
        assert_eq!(SessionRecord::decode(&raw[..40]), None);
        assert_eq!(SessionRecord::decode(&[2, 0, 0, 0, 0, 0, 0, 9]), None);
    }
}
