//! Putting a verified output in place: uploaded under a temporary name
//! beside its target ([`scratch::temp_name`]), checked (size, and a
//! checksum where both ends have one), and moved over the target. With
//! `--in-place` the target is the original: just before the move it is
//! read again and compared with its state when it was fetched (size,
//! modification time, and the hash or ETag-backed checksum where the
//! backend has one); a changed original is kept and the output dropped.
//! The temporary object is deleted on every way out but a successful move.

use tokio_util::sync::CancellationToken;

use super::optimize::{Plan, Stop};
use super::scratch;
use crate::rclone::ObjectState;

/// Hash types rclone computes for local files, in order of preference.
const LOCAL_HASHES: &[&str] = &["md5", "sha1", "sha256", "crc32", "whirlpool"];

/// How the move ended.
pub enum Published {
    Moved,
    /// `--in-place`, and the original is no longer what was fetched.
    Changed(String),
}

/// The hash type both the destination and the local scratch copy give.
pub async fn hash_type(plan: &Plan) -> Option<String> {
    plan.hash_type
        .get_or_init(|| async {
            let remote = plan.rclone.hash_types(&plan.dest_fs).await.unwrap_or_default();
            LOCAL_HASHES.iter().find(|h| remote.iter().any(|r| r == *h)).map(|h| h.to_string())
        })
        .await
        .clone()
}

/// The original's state now, for `--in-place`.
pub async fn original_state(plan: &Plan, path: &str) -> Result<Option<ObjectState>, Stop> {
    let hash = hash_type(plan).await;
    plan.rclone
        .object_state(&plan.source_fs, path, hash.as_deref())
        .await
        .map_err(|e| Stop::rclone("read the original", e))
}

/// Upload under a temporary name beside `path`, check it, and move it in,
/// unless (`fetched` given) the original changed since it was fetched.
pub async fn publish(
    plan: &Plan,
    path: &str,
    (work_fs, local): (&str, &str),
    len: u64,
    fetched: Option<&ObjectState>,
    cancel: &CancellationToken,
) -> Result<Published, Stop> {
    let temp = scratch::temp_name(path, &plan.run_tag);
    let copied = plan.rclone.copy_file_cancellable((work_fs, local), (&plan.dest_fs, &temp), cancel).await;
    let checked = match copied {
        Ok(()) => check_upload(plan, work_fs, local, &temp, len).await,
        Err(e) => Err(Stop::rclone("upload", e)),
    };
    let unchanged = match (checked, fetched) {
        (Ok(()), Some(before)) => unchanged_since(plan, path, before).await,
        (Ok(()), None) => Ok(None),
        (Err(stop), _) => Err(stop),
    };
    let moved = match unchanged {
        Ok(None) => plan
            .rclone
            .move_file(&plan.dest_fs, &temp, path)
            .await
            .map(|()| Published::Moved)
            .map_err(|e| Stop::rclone("move into place", e)),
        Ok(Some(change)) => Ok(Published::Changed(change)),
        Err(stop) => Err(stop),
    };
    if !matches!(moved, Ok(Published::Moved)) {
        // Whatever the transfer left under the temporary name goes.
        if let Err(e) = plan.rclone.delete_file(&plan.dest_fs, &temp).await {
            tracing::warn!("could not remove the temporary upload {temp}: {e}");
        }
    }
    moved
}

/// `Some(what changed)` when the original is not what was fetched.
async fn unchanged_since(plan: &Plan, path: &str, before: &ObjectState) -> Result<Option<String>, Stop> {
    let now = original_state(plan, path).await?;
    Ok(describe_change(before, now.as_ref()))
}

/// What differs between the state at fetch and now, in words.
pub fn describe_change(before: &ObjectState, now: Option<&ObjectState>) -> Option<String> {
    let Some(now) = now else { return Some("the original was deleted during the encode".into()) };
    if now.size != before.size {
        return Some(format!("the original changed during the encode ({} bytes, was {})", now.size, before.size));
    }
    if now.mod_time != before.mod_time {
        let at = now.mod_time.as_deref().unwrap_or("?");
        return Some(format!("the original changed during the encode (modified {at})"));
    }
    if before.hash.is_some() && now.hash != before.hash {
        return Some("the original changed during the encode (its checksum differs)".into());
    }
    None
}

async fn check_upload(plan: &Plan, work_fs: &str, local: &str, temp: &str, len: u64) -> Result<(), Stop> {
    let uploaded = plan.rclone.stat(&plan.dest_fs, temp).await.map_err(|e| Stop::rclone("check upload", e))?;
    if uploaded != Some(len) {
        return Err(Stop::upload(format!("upload check: {len} bytes sent, {uploaded:?} at the destination")));
    }
    if let Some(t) = hash_type(plan).await {
        let there = plan.rclone.hash(&plan.dest_fs, temp, &t).await.map_err(|e| Stop::rclone("check upload", e))?;
        // Some objects carry no hash (multipart uploads on S3): size only.
        if let Some(there) = there {
            let here = plan.rclone.hash(work_fs, local, &t).await.map_err(|e| Stop::rclone("check upload", e))?;
            if here.as_deref() != Some(there.as_str()) {
                return Err(Stop::upload(format!("upload check: {t} differs ({here:?} here, {there} there)")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_difference_is_a_change() {
        let at = |size: u64, time: &str, hash: Option<&str>| ObjectState {
            size,
            mod_time: Some(time.into()),
            hash: hash.map(String::from),
        };
        let before = at(100, "2026-01-01T00:00:00Z", Some("aa"));
        assert_eq!(describe_change(&before, Some(&before.clone())), None);
        assert!(
            describe_change(&before, Some(&at(99, "2026-01-01T00:00:00Z", Some("aa")))).unwrap().contains("99 bytes")
        );
        assert!(
            describe_change(&before, Some(&at(100, "2026-01-02T00:00:00Z", Some("aa")))).unwrap().contains("modified")
        );
        assert!(
            describe_change(&before, Some(&at(100, "2026-01-01T00:00:00Z", Some("bb")))).unwrap().contains("checksum")
        );
        assert!(describe_change(&before, None).unwrap().contains("deleted"));
    }
}
