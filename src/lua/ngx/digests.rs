//! `ngx.encode_base64`, `ngx.decode_base64`, `ngx.decode_base64mime`, `ngx.md5`, `ngx.md5_bin`,
//! `ngx.sha1_bin`, `ngx.hmac_sha1`, `ngx.crc32_short` and `ngx.crc32_long`:
//! nginx's own MD5, SHA-1 and base64, and CRC32 over nginx's tables (its
//! two loops are inline C in a header, so they are written out here).
//! HMAC-SHA1 is built over nginx's SHA-1, which every nginx has, rather than
//! OpenSSL's `HMAC`, which only SSL builds link.

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::arguments::{check_string, expect_count, ffi_string, lua_type_name};
use crate::lua::raise::{api_function, raise};
use crate::nginx_ffi::Base64;

pub(super) fn install(lua: &Lua, ngx: &Table, tostring: &Function) -> mlua::Result<()> {
    install_base64(lua, ngx, tostring)?;
    install_digests(lua, ngx, tostring)
}

fn install_base64(lua: &Lua, ngx: &Table, tostring: &Function) -> mlua::Result<()> {
    let to_string = tostring.clone();
    ngx.set(
        "encode_base64",
        api_function(lua, move |lua, (s, no_padding): (Option<Value>, Value)| {
            let s = ffi_string(lua, &to_string, s)?;
            let no_padding = match no_padding {
                Value::Nil | Value::Boolean(false) => false,
                Value::Boolean(true) => true,
                other => {
                    return Err(raise(format!(
                        "bad no_padding: boolean expected, got {}",
                        lua_type_name(Some(&other))
                    )))
                }
            };
            let mut encoded = crate::nginx_ffi::encode_base64(&s.as_bytes(), Base64::Standard);
            if no_padding {
                while encoded.last() == Some(&b'=') {
                    encoded.pop();
                }
            }
            lua.create_string(encoded)
        })?,
    )?;
    ngx.set(
        "decode_base64",
        api_function(lua, |lua, s: Option<Value>| {
            let Some(Value::String(s)) = s else {
                return Err(raise("string argument only"));
            };
            match crate::nginx_ffi::decode_base64(&s.as_bytes(), Base64::Standard) {
                Some(decoded) => Ok(Value::String(lua.create_string(decoded)?)),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    ngx.set(
        "decode_base64mime",
        api_function(lua, |lua, s: Option<Value>| {
            let Some(Value::String(s)) = s else {
                return Err(raise("string argument only"));
            };
            match crate::nginx_ffi::decode_base64(&mime_letters(&s.as_bytes()), Base64::Standard) {
                Some(decoded) => Ok(Value::String(lua.create_string(decoded)?)),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    Ok(())
}

/// The base64 letters of MIME text (RFC 2045): line breaks and any other
/// byte outside the alphabet are skipped; the data ends at the padding.
fn mime_letters(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        .collect()
}

fn hex_lower(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|&b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .collect()
}

const SHA1_BLOCK: usize = 64;
const SHA1_LEN: usize = 20;

/// HMAC (RFC 2104) over a SHA-1 given as a function hashing the
/// concatenation of its parts.
fn hmac_sha1_with(
    sha1: impl Fn(&[&[u8]]) -> [u8; SHA1_LEN],
    key: &[u8],
    data: &[u8],
) -> [u8; SHA1_LEN] {
    let mut block = [0u8; SHA1_BLOCK];
    if key.len() > SHA1_BLOCK {
        block[..SHA1_LEN].copy_from_slice(&sha1(&[key]));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad = block.map(|b| b ^ 0x36);
    let outer_pad = block.map(|b| b ^ 0x5c);
    let inner = sha1(&[&inner_pad, data]);
    sha1(&[&outer_pad, &inner])
}

/// nginx's CRC32 with its 16-entry table, as `ngx_crc32_short` computes it.
fn crc32_short_with(table: &[u32; 16], data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc = table[((crc ^ u32::from(byte & 0xf)) & 0xf) as usize] ^ (crc >> 4);
        crc = table[((crc ^ u32::from(byte >> 4)) & 0xf) as usize] ^ (crc >> 4);
    }
    !crc
}

/// nginx's CRC32 with its 256-entry table, as `ngx_crc32_long` computes it.
fn crc32_long_with(table: &[u32; 256], data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc = table[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn install_digests(lua: &Lua, ngx: &Table, tostring: &Function) -> mlua::Result<()> {
    let to_string = tostring.clone();
    ngx.set(
        "md5",
        api_function(lua, move |lua, s: Option<Value>| {
            let s = ffi_string(lua, &to_string, s)?;
            lua.create_string(hex_lower(&crate::nginx_ffi::md5(&s.as_bytes())))
        })?,
    )?;
    let to_string = tostring.clone();
    ngx.set(
        "md5_bin",
        api_function(lua, move |lua, s: Option<Value>| {
            let s = ffi_string(lua, &to_string, s)?;
            lua.create_string(crate::nginx_ffi::md5(&s.as_bytes()))
        })?,
    )?;
    let to_string = tostring.clone();
    ngx.set(
        "sha1_bin",
        api_function(lua, move |lua, s: Option<Value>| {
            let s = ffi_string(lua, &to_string, s)?;
            lua.create_string(crate::nginx_ffi::sha1(&[&s.as_bytes()]))
        })?,
    )?;
    ngx.set(
        "hmac_sha1",
        api_function(lua, |lua, args: MultiValue| {
            expect_count(&args, 2, |n| format!("expecting 2 arguments, but got {n}"))?;
            let key = check_string(lua, args.front(), 1, "hmac_sha1")?;
            let data = check_string(lua, args.get(1), 2, "hmac_sha1")?;
            let mac = hmac_sha1_with(crate::nginx_ffi::sha1, &key.as_bytes(), &data.as_bytes());
            lua.create_string(mac)
        })?,
    )?;
    for (name, long) in [("crc32_short", false), ("crc32_long", true)] {
        ngx.set(
            name,
            api_function(lua, move |lua, args: MultiValue| {
                expect_count(&args, 1, |n| format!("expecting one argument, but got {n}"))?;
                let s = check_string(lua, args.front(), 1, name)?;
                let crc = if long {
                    crc32_long_with(crate::nginx_ffi::crc32_table256(), &s.as_bytes())
                } else {
                    crc32_short_with(crate::nginx_ffi::crc32_table16(), &s.as_bytes())
                };
                Ok(f64::from(crc))
            })?,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in digest recording what it hashed, to check HMAC's layout.
    fn recording_digest(parts: &[&[u8]]) -> [u8; SHA1_LEN] {
        let joined: Vec<u8> = parts.concat();
        let mut digest = [0u8; SHA1_LEN];
        digest[0] = (joined.len() & 0xff) as u8;
        digest[1] = joined.first().copied().unwrap_or(0);
        digest[2] = joined.get(SHA1_BLOCK).copied().unwrap_or(0);
        digest
    }

    #[test]
    fn hmac_pads_short_keys_and_hashes_long_ones() {
        // Short key: inner = H(K ^ ipad || data) = H of 64 + 4 bytes.
        let mac = hmac_sha1_with(recording_digest, b"key", b"data");
        // Outer hashes 64 bytes of padded key and the 20-byte inner digest.
        assert_eq!(mac[0], (SHA1_BLOCK + SHA1_LEN) as u8);
        assert_eq!(mac[1], b'k' ^ 0x5c);
        // The inner digest starts with its input length, 68.
        assert_eq!(mac[2], 68);
        // A key longer than a block is replaced by its digest first.
        let long_key = [0xaa; 80];
        let mac = hmac_sha1_with(recording_digest, &long_key, b"");
        assert_eq!(mac[1], 80 ^ 0x5c);
    }

    /// The standard reflected CRC-32 table (polynomial 0xEDB88320).
    fn crc_table(entries: usize, bits: u32) -> Vec<u32> {
        (0..entries as u32)
            .map(|mut c| {
                for _ in 0..bits {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
                c
            })
            .collect()
    }

    #[test]
    fn crc32_both_tables_give_the_standard_checksum() {
        let short: [u32; 16] = crc_table(16, 4).try_into().unwrap();
        let long: [u32; 256] = crc_table(256, 8).try_into().unwrap();
        assert_eq!(crc32_short_with(&short, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_long_with(&long, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_long_with(&long, b"hello"), 907_060_870);
        assert_eq!(crc32_short_with(&short, b""), 0);
    }
}
