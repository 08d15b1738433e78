//! The Redis store's packed session record, read on the Rust side (access-token checks, session
//! lists, and tools that look behind the application's back). `lua/records.lua` writes the
//! layout down byte by byte and is the only writer; this is its only other reader. Depends on
//! `domain` only.

use crate::domain::Jti;

use super::RefreshClaims;

const REVOKED: u8 = 1;
const BROWSER: u8 = 2;
const PENDING: u8 = 4;
const HAS_END: u8 = 8;

/// The tag of an id packed as 16 bytes (its 32 lowercase hex characters).
const HEX_TAG: u8 = 0x90;

/// A jti or session id as the Redis store writes it: 32 lowercase hex characters (every id this
/// server mints, and SimpleJWT's `uuid4().hex`) as the tag 0x90 and their 16 bytes; any other id
/// (at most 64 characters, `domain` sees to that) as its length and its text.
pub fn pack_id(id: &str) -> Vec<u8> {
    let b = id.as_bytes();
    if b.len() == 32 && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        let mut out = Vec::with_capacity(17);
        out.push(HEX_TAG);
        for pair in b.chunks(2) {
            let nibble = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
            out.push(nibble(pair[0]) << 4 | nibble(pair[1]));
        }
        return out;
    }
    let mut out = Vec::with_capacity(b.len() + 1);
    out.push(b.len() as u8);
    out.extend_from_slice(b);
    out
}

/// The id packed at the start of `b`, and what follows it.
pub fn unpack_id(b: &[u8]) -> Option<(String, &[u8])> {
    let (&tag, rest) = b.split_first()?;
    if tag == HEX_TAG {
        let (raw, rest) = rest.split_at_checked(16)?;
        let hex = raw.iter().map(|byte| format!("{byte:02x}")).collect();
        return Some((hex, rest));
    }
    let (text, rest) = rest.split_at_checked(usize::from(tag))?;
    Some((String::from_utf8(text.to_vec()).ok()?, rest))
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

impl Bytes<'_> {
    fn int(&mut self, n: usize) -> Option<u64> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head.iter().fold(0, |v, b| v << 8 | u64::from(*b)))
    }

    fn jti(&mut self) -> Option<Jti> {
        let (id, rest) = unpack_id(self.0)?;
        self.0 = rest;
        Jti::parse(&id)
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
            return Some(record);
        }
        record.created_ms = b.int(6)?;
        record.last_refreshed_ms = Some(b.int(6)?).filter(|ms| *ms > 0);
        record.current = Some(b.jti()?);
        if flags & PENDING != 0 {
            record.pending = Some(RefreshClaims {
                jti: b.jti()?,
                iat: b.int(5)?,
                exp: b.int(5)?,
            });
        }
        if flags & HAS_END != 0 {
            record.end = Some(b.int(5)?);
        }
        for _ in 0..b.int(1)? {
            let jti = b.jti()?;
            record.retired.push((jti, b.int(6)?));
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
        assert_eq!(packed.len(), 17);
        assert_eq!(unpack_id(&packed), Some((hex.to_owned(), &[][..])));
        for other in [
            "0123456789ABCDEF0123456789ABCDEF",
            "42",
            "a-b_c.d@e+f",
            &"x".repeat(64),
        ] {
            let mut packed = pack_id(other);
            assert_eq!(packed.len(), other.len() + 1);
            packed.push(7);
            assert_eq!(unpack_id(&packed), Some((other.to_owned(), &[7][..])));
        }
        assert_eq!(unpack_id(&[HEX_TAG, 1, 2]), None);
        assert_eq!(unpack_id(&[5, b'a']), None);
    }

    /// The bytes `lua/records.lua` writes for a live session with a pending successor, an
    /// absolute end, one retirement, an address and a user agent (written out by hand).
    #[test]
    fn a_record_reads_back_every_field() {
        let cur = "00112233445566778899aabbccddeeff";
        let pend = "ffeeddccbbaa99887766554433221100";
        let mut raw = vec![1, BROWSER | PENDING | HAS_END];
        let int = |v: u64, n: usize| v.to_be_bytes()[8 - n..].to_vec();
        raw.extend(int(1_800_000_000_000, 6));
        raw.extend(int(1_700_000_000_123, 6));
        raw.extend(int(0, 6));
        raw.extend(pack_id(cur));
        raw.extend(pack_id(pend));
        raw.extend(int(1_700_000_100, 5));
        raw.extend(int(1_700_086_500, 5));
        raw.extend(int(1_790_000_000, 5));
        raw.push(1);
        raw.extend(pack_id("old"));
        raw.extend(int(1_700_000_050_000, 6));
        raw.push(9);
        raw.extend(b"127.0.0.1");
        raw.extend("Firefox \u{1f98a}".as_bytes());
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
        assert_eq!(SessionRecord::decode(&raw[..30]), None);
        assert_eq!(SessionRecord::decode(&[2, 0, 0, 0, 0, 0, 0, 9]), None);
    }
}
