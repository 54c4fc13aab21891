//! An independent check of SIP digest credentials (RFC 2617 / RFC 8760 with MD5), so tests can
//! verify what switchboard put in an `Authorization` / `Proxy-Authorization` header. sipp's own
//! `<verifyauth>` only looks at `Authorization:`, hence this.
//!
//! MD5 is implemented here (RFC 1321) because the harness may only depend on std, serde_json and
//! tempfile; the selftest checks it against the RFC 1321 test suite.

use std::collections::HashMap;

/// MD5 of `data` as 32 lowercase hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    md5(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 of `data` (RFC 1321).
pub fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32)
    let k: Vec<u32> = (0..64)
        .map(|i: u32| (f64::from(i + 1).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());

    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }

    let mut out = [0u8; 16];
    for (i, word) in state.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// The parameters of a `Digest` credentials or challenge header value, keys lowercased,
/// quotes removed. Returns `None` if the value does not start with `Digest`.
pub fn parse_digest_params(value: &str) -> Option<HashMap<String, String>> {
    let value = value.trim();
    let rest = value
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("digest"))
        .map(|_| &value[6..])?;
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        // Skip separators.
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if name.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            val.push(escaped);
                        }
                    }
                    '"' => break,
                    _ => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                val.push(*c);
                chars.next();
            }
            val = val.trim().to_owned();
        }
        params.insert(name, val);
    }
    Some(params)
}

/// Checks the `response` in digest credentials (`header_value`, the value of an
/// `Authorization` or `Proxy-Authorization` header) for a request with `method`, against
/// `password`. Supports MD5 (and MD5-sess) with and without `qop=auth`.
/// Returns the parsed parameters on success, or a description of what is wrong.
pub fn verify_digest(
    header_value: &str,
    method: &str,
    password: &str,
) -> Result<HashMap<String, String>, String> {
    let p = parse_digest_params(header_value)
        .ok_or_else(|| format!("not Digest credentials: {header_value:?}"))?;
    let get = |k: &str| {
        p.get(k)
            .cloned()
            .ok_or_else(|| format!("credentials lack {k}: {header_value:?}"))
    };
    let (username, realm, nonce, uri, response) = (
        get("username")?,
        get("realm")?,
        get("nonce")?,
        get("uri")?,
        get("response")?,
    );
    let algorithm = p.get("algorithm").map_or("MD5".to_owned(), |a| a.clone());
    let mut ha1 = md5_hex(format!("{username}:{realm}:{password}").as_bytes());
    let cnonce = p.get("cnonce").cloned().unwrap_or_default();
    if algorithm.eq_ignore_ascii_case("MD5-sess") {
        ha1 = md5_hex(format!("{ha1}:{nonce}:{cnonce}").as_bytes());
    } else if !algorithm.eq_ignore_ascii_case("MD5") {
        return Err(format!("unsupported algorithm {algorithm:?}"));
    }
    let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
    let expected = match p.get("qop").map(String::as_str) {
        None | Some("") => md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
        Some(qop) if qop.eq_ignore_ascii_case("auth") => {
            let nc = get("nc")?;
            if nc.len() != 8 || !nc.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("nc must be 8 hex digits, got {nc:?}"));
            }
            if cnonce.is_empty() {
                return Err("qop=auth without cnonce".to_owned());
            }
            md5_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes())
        }
        Some(qop) => return Err(format!("unsupported qop {qop:?}")),
    };
    if expected.eq_ignore_ascii_case(&response) {
        Ok(p)
    } else {
        Err(format!(
            "wrong digest response for {username}: got {response}, expected {expected} \
             (realm {realm:?}, nonce {nonce:?}, uri {uri:?}, method {method})"
        ))
    }
}
