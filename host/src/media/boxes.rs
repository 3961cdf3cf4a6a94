//! Whether an ISO-BMFF file (MP4, MOV, 3GP, M4V) is "fast start": its
//! `moov` box (the index) before its `mdat` box (the media), so a browser
//! can start playing before the whole file has arrived (ISO/IEC 14496-12
//! §4.2 for the box header). Read from the top-level box headers only: a
//! few 16-byte reads of a local file, or Range requests of a URL.

use std::io::{Read, Seek, SeekFrom};

use super::facts::{Input, Unread};

/// Top-level boxes looked at before giving up.
const MAX_BOXES: usize = 32;

/// The ISO-BMFF containers, as ffprobe names them or by file extension.
pub fn is_iso_bmff(format_or_ext: &str) -> bool {
    let f = format_or_ext.trim_start_matches('.').to_ascii_lowercase();
    f.starts_with("mov,mp4") || matches!(f.as_str(), "mp4" | "m4v" | "mov" | "3gp" | "3g2" | "mj2" | "ipod" | "ismv")
}

/// One step of the walk: the box type and where the next box starts;
/// `None` when the header is not a box header.
fn next_box(header: &[u8], offset: u64, total: Option<u64>) -> Option<([u8; 4], Option<u64>)> {
    if header.len() < 8 {
        return None;
    }
    let size = u64::from(u32::from_be_bytes(header[0..4].try_into().ok()?));
    let kind: [u8; 4] = header[4..8].try_into().ok()?;
    if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return None;
    }
    let length = match size {
        // To the end of the file: the last box.
        0 => return Some((kind, None)),
        1 if header.len() >= 16 => u64::from_be_bytes(header[8..16].try_into().ok()?),
        1 => return None,
        n => n,
    };
    if length < 8 {
        return None;
    }
    let next = offset.checked_add(length)?;
    Some((kind, total.is_none_or(|t| next < t).then_some(next)))
}

/// What the walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `moov` before `mdat`.
    FastStart,
    /// `mdat` first: the whole file must arrive before playback starts.
    MoovLast,
    /// Not read as ISO-BMFF boxes.
    Unknown,
}

/// Walk the headers `read(offset)` returns (16 bytes or fewer).
fn walk(total: Option<u64>, mut read: impl FnMut(u64) -> Option<Vec<u8>>) -> Order {
    let mut offset = 0;
    for _ in 0..MAX_BOXES {
        let Some(header) = read(offset) else { return Order::Unknown };
        match next_box(&header, offset, total) {
            Some((kind, _)) if &kind == b"moov" => return Order::FastStart,
            Some((kind, _)) if &kind == b"mdat" => return Order::MoovLast,
            Some((_, Some(next))) => offset = next,
            _ => return Order::Unknown,
        }
    }
    Order::Unknown
}

/// The box order of a local file.
pub fn file_order(path: &std::path::Path) -> Order {
    let Ok(mut file) = std::fs::File::open(path) else { return Order::Unknown };
    let total = file.metadata().ok().map(|m| m.len());
    walk(total, |offset| {
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut buf = Vec::with_capacity(16);
        (&mut file).take(16).read_to_end(&mut buf).ok()?;
        Some(buf)
    })
}

/// The box order of an object by URL: one 16-byte Range request per box.
pub async fn url_order(client: &reqwest::Client, input: &Input<'_>) -> Result<Order, Unread> {
    let mut offset = 0u64;
    let mut total = None;
    for _ in 0..MAX_BOXES {
        let request = client.get(input.url).header("range", format!("bytes={offset}-{}", offset + 15));
        let fetch = |e: reqwest::Error| Unread::Fetch(format!("{}: {}", input.shown, e.without_url()));
        let response = request.send().await.map_err(fetch)?;
        if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            // No Range support (or past the end): no answer, not a failure.
            return Ok(Order::Unknown);
        }
        total = total.or_else(|| {
            let range = response.headers().get("content-range")?.to_str().ok()?;
            range.rsplit('/').next()?.trim().parse().ok()
        });
        let header = response.bytes().await.map_err(fetch)?;
        match next_box(&header, offset, total) {
            Some((kind, _)) if &kind == b"moov" => return Ok(Order::FastStart),
            Some((kind, _)) if &kind == b"mdat" => return Ok(Order::MoovLast),
            Some((_, Some(next))) => offset = next,
            _ => return Ok(Order::Unknown),
        }
    }
    Ok(Order::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(boxes: &[(&[u8; 4], u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, len) in boxes {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(*kind);
            out.resize(out.len() + *len as usize - 8, 0);
        }
        out
    }

    fn order(bytes: &[u8]) -> Order {
        walk(Some(bytes.len() as u64), |o| bytes.get(o as usize..).map(|r| r[..r.len().min(16)].to_vec()))
    }

    #[test]
    fn finds_which_comes_first() {
        assert_eq!(order(&file(&[(b"ftyp", 32), (b"moov", 100), (b"mdat", 50)])), Order::FastStart);
        assert_eq!(order(&file(&[(b"ftyp", 32), (b"free", 8), (b"mdat", 50), (b"moov", 100)])), Order::MoovLast);
        assert_eq!(order(b"not a video at all, just text"), Order::Unknown);
        assert_eq!(order(&file(&[(b"ftyp", 32)])), Order::Unknown);
        // A 64-bit mdat size.
        let mut big = file(&[(b"ftyp", 24)]);
        big.extend_from_slice(&1u32.to_be_bytes());
        big.extend_from_slice(b"mdat");
        big.extend_from_slice(&(1u64 << 33).to_be_bytes());
        assert_eq!(order(&big), Order::MoovLast);
        assert!(is_iso_bmff("mov,mp4,m4a,3gp,3g2,mj2") && is_iso_bmff(".3gp") && !is_iso_bmff("matroska,webm"));
    }
}
