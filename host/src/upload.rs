//! `--upload REMOTE:PATH` for `warm`, `validate` and `optimize`: at the end
//! of a run its results and reports are copied to one rclone destination
//! through the managed rclone, under their own file names, so a batch job
//! needs no shared volume. Checked before the run: a destination is given,
//! there is something to upload, and no two outputs share a name (one
//! would silently replace the other at the destination). Each file goes up
//! under a temporary name and is then moved onto its own, so a run killed
//! mid-upload never leaves half a file where a checkpoint was.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::rclone::Rclone;
use crate::usage;
use crate::util::redact::redact_url;

/// Where a run's output files go, checked before the run.
#[derive(Debug)]
pub struct Upload {
    dest: String,
    files: Vec<PathBuf>,
    rclone: Rclone,
}

impl Upload {
    /// `--upload` for a run writing `files` (the outputs it was told to
    /// write, absent ones left out); `rclone` is called only when there is
    /// something to upload. A usage error when the destination is empty,
    /// there is no file, or two files share a name.
    pub fn prepare(
        dest: Option<&str>,
        files: &[Option<&Path>],
        rclone: impl FnOnce() -> Result<Rclone>,
    ) -> Result<Option<Self>> {
        distinct(files).map_err(usage)?;
        let Some(dest) = dest else { return Ok(None) };
        if dest.trim().is_empty() {
            return Err(usage("--upload: give an rclone REMOTE:PATH"));
        }
        let files: Vec<PathBuf> = files.iter().flatten().map(|p| p.to_path_buf()).collect();
        if files.is_empty() {
            return Err(usage(format!(
                "--upload {}: this run writes no file to upload (name one, e.g. --results FILE)",
                shown(dest)
            )));
        }
        check_names(&files).map_err(usage)?;
        Ok(Some(Upload { dest: dest.to_string(), files, rclone: rclone()? }))
    }

    /// Copy every file there. Not a usage error when it fails (exit 2 would
    /// fail a whole Kubernetes Job): the run is done, and a retry may well
    /// upload. The files stay where they were written.
    pub async fn run(&self) -> Result<()> {
        let dest = shown(&self.dest);
        for file in &self.files {
            let absolute = std::path::absolute(file)?;
            let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name()) else { continue };
            let name = name.to_string_lossy();
            crate::checkpoint::put(&self.rclone, dir, &name, &self.dest)
                .await
                .map_err(|e| anyhow::anyhow!("--upload {dest}: cannot copy {}: {e:#}", file.display()))?;
            tracing::info!("uploaded {} to {dest}", file.display());
        }
        Ok(())
    }

    /// The rclone that uploads (checkpoints use it too).
    pub fn rclone(&self) -> &Rclone {
        &self.rclone
    }

    /// The destination, `REMOTE:PATH`.
    pub fn dest(&self) -> &str {
        &self.dest
    }

    /// Stop the rclone daemon the copies may have started.
    pub fn shutdown(&self) {
        self.rclone.shutdown();
    }
}

/// A destination as shown: URL credentials and rclone secrets hidden.
fn shown(dest: &str) -> String {
    redact_url(&crate::util::rclone_secrets::redact_remote(dest))
}

/// Two outputs naming one file (`--results r.jsonl --report r.jsonl`, or
/// through a link): the one written last would replace the other, a
/// summary over the results. Checked with or without `--upload`.
fn distinct(files: &[Option<&Path>]) -> Result<(), String> {
    // The parent resolved (the file itself may not exist yet).
    let key = |p: &Path| {
        let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let parent = absolute.parent().and_then(|d| std::fs::canonicalize(d).ok());
        match (std::fs::canonicalize(&absolute), parent, absolute.file_name()) {
            (Ok(real), _, _) => real,
            (_, Some(dir), Some(name)) => dir.join(name),
            _ => absolute,
        }
    };
    let files: Vec<&Path> = files.iter().flatten().copied().collect();
    for (i, a) in files.iter().enumerate() {
        if let Some(b) = files[..i].iter().find(|b| key(b) == key(a)) {
            return Err(format!(
                "{} and {} are one file: two outputs would overwrite each other; give each output its own file",
                b.display(),
                a.display()
            ));
        }
    }
    Ok(())
}

/// Files are uploaded by name: two with one name (in two directories, or
/// the same file named twice) would land on one object.
fn check_names(files: &[PathBuf]) -> Result<(), String> {
    for (i, a) in files.iter().enumerate() {
        for b in &files[..i] {
            if a.file_name() == b.file_name() {
                return Err(format!(
                    "--upload: {} and {} would both be uploaded as `{}`; give the outputs different file names",
                    b.display(),
                    a.display(),
                    a.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_sharing_a_name_are_refused_before_the_run() {
        let p = |s: &str| PathBuf::from(s);
        assert!(check_names(&[p("run.jsonl"), p("out/run.json"), p("run.md")]).is_ok());
        let err = check_names(&[p("a/run.json"), p("run.md"), p("b/run.json")]).unwrap_err();
        assert_eq!(
            err,
            "--upload: a/run.json and b/run.json would both be uploaded as `run.json`; give the outputs different \
             file names"
        );
        assert!(check_names(&[p("x.json"), p("x.json")]).is_err(), "one file named twice");
        // One file named twice is refused with or without --upload.
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("r.jsonl"), dir.path().join("./r.jsonl"));
        let e = Upload::prepare(None, &[Some(&a), Some(&b)], || unreachable!()).unwrap_err().to_string();
        assert!(e.contains("are one file"), "{e}");
        let other = dir.path().join("s.json");
        assert!(Upload::prepare(None, &[Some(&a), Some(&other)], || unreachable!()).unwrap().is_none());
        let none = Upload::prepare(Some("remote:out"), &[None, None], || unreachable!());
        assert!(none.unwrap_err().to_string().contains("writes no file to upload"));
        assert!(Upload::prepare(Some(" "), &[Some(Path::new("a"))], || unreachable!()).is_err());
        assert!(Upload::prepare(None, &[Some(Path::new("a"))], || unreachable!()).unwrap().is_none());
    }
}
