//! The pinned external tools LICEN drives: anvil, forge and cast 1.7.1 from npm, and the
//! solc-js shim forge compiles with.
//!
//! Owns: locating the tools folder (`tools/` in the source tree, or `LICEN_TOOLS_DIR`) and
//! installing it from the committed `package-lock.json` with `npm ci`. The install is
//! idempotent: a stamp records the lockfile's hash, so a second run does nothing and works
//! offline. Must never: download anything not pinned by the lockfile, or touch the user's PATH.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Foundry version every tool must report.
pub const FOUNDRY_VERSION: &str = "1.7.1";

/// Errors while locating or installing the tools.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tools folder has no lockfile.
    #[error("no {0} found: set LICEN_TOOLS_DIR to the `tools` folder of a LICEN checkout")]
    MissingLockfile(PathBuf),
    /// npm could not be started.
    #[error("could not run `npm` ({0}): install Node.js 20+ with npm, then retry")]
    NpmMissing(std::io::Error),
    /// `npm ci` failed.
    #[error(
        "`npm ci` in {dir} failed with {status}: check the network can reach the npm registry, then retry `cargo xtask bootstrap`"
    )]
    NpmFailed {
        /// The tools folder.
        dir: PathBuf,
        /// npm's exit status.
        status: std::process::ExitStatus,
    },
    /// A tool is missing or reports the wrong version after install.
    #[error("{tool} at {path} {problem}: run `cargo xtask bootstrap` again")]
    BadTool {
        /// Tool name.
        tool: &'static str,
        /// Where it was expected.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// I/O on the tools folder.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Paths of the installed tools.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The tools folder (holds package.json, package-lock.json, node_modules, bin/solc).
    pub dir: PathBuf,
}

/// What [`Tools::ensure_installed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// The stamp matched the lockfile and every tool was present: nothing was done.
    AlreadyInstalled,
    /// `npm ci` ran.
    Installed,
}

impl Tools {
    /// The tools folder: `LICEN_TOOLS_DIR`, else `tools/` of the source tree this was built from.
    pub fn locate() -> Self {
        let dir = std::env::var_os("LICEN_TOOLS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("tools"));
        Self { dir }
    }

    /// Installs the pinned tools unless the stamp says they are already installed.
    pub fn ensure_installed(&self) -> Result<InstallOutcome> {
        let lock = self.dir.join("package-lock.json");
        if !lock.is_file() {
            return Err(Error::MissingLockfile(lock));
        }
        let wanted = self.lock_digest()?;
        if self.stamp().as_deref() == Some(wanted.as_str()) && self.all_present() {
            return Ok(InstallOutcome::AlreadyInstalled);
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&self.dir)
            .status()
            .map_err(Error::NpmMissing)?;
        if !status.success() {
            return Err(Error::NpmFailed {
                dir: self.dir.clone(),
                status,
            });
        }
        self.verify()?;
        std::fs::write(self.stamp_path(), &wanted).map_err(|source| Error::Io {
            context: format!("writing {}", self.stamp_path().display()),
            source,
        })?;
        Ok(InstallOutcome::Installed)
    }

    /// Checks every binary runs and reports the pinned version.
    pub fn verify(&self) -> Result<()> {
        for (tool, path) in [
            ("anvil", self.anvil()),
            ("forge", self.forge()),
            ("cast", self.cast()),
        ] {
            let output =
                Command::new(&path)
                    .arg("--version")
                    .output()
                    .map_err(|e| Error::BadTool {
                        tool,
                        path: path.clone(),
                        problem: format!("does not run ({e})"),
                    })?;
            let text = String::from_utf8_lossy(&output.stdout);
            if !text.contains(&format!("Version: {FOUNDRY_VERSION}")) {
                return Err(Error::BadTool {
                    tool,
                    path,
                    problem: format!("reports `{}`, expected {FOUNDRY_VERSION}", text.trim()),
                });
            }
        }
        let solc = self.solc();
        let output = Command::new(&solc)
            .arg("--version")
            .output()
            .map_err(|e| Error::BadTool {
                tool: "solc",
                path: solc.clone(),
                problem: format!("does not run ({e}); is `node` on PATH?"),
            })?;
        if !String::from_utf8_lossy(&output.stdout).contains("Version: 0.8.30+commit.73712a01") {
            return Err(Error::BadTool {
                tool: "solc",
                path: solc,
                problem: "does not report solc 0.8.30".into(),
            });
        }
        Ok(())
    }

    /// The anvil binary.
    pub fn anvil(&self) -> PathBuf {
        self.foundry_bin("anvil")
    }

    /// The forge binary.
    pub fn forge(&self) -> PathBuf {
        self.foundry_bin("forge")
    }

    /// The cast binary.
    pub fn cast(&self) -> PathBuf {
        self.foundry_bin("cast")
    }

    /// The solc shim forge is configured with (`contracts/foundry.toml`).
    pub fn solc(&self) -> PathBuf {
        self.dir.join("bin").join("solc")
    }

    fn foundry_bin(&self, name: &str) -> PathBuf {
        self.dir
            .join("node_modules/@foundry-rs")
            .join(format!("{name}-linux-amd64"))
            .join("bin")
            .join(name)
    }

    fn all_present(&self) -> bool {
        [self.anvil(), self.forge(), self.cast(), self.solc()]
            .iter()
            .all(|p| p.is_file())
            && self.dir.join("node_modules/solc/package.json").is_file()
    }

    fn stamp_path(&self) -> PathBuf {
        self.dir.join(".installed")
    }

    fn stamp(&self) -> Option<String> {
        std::fs::read_to_string(self.stamp_path()).ok()
    }

    fn lock_digest(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        for file in ["package.json", "package-lock.json"] {
            let path = self.dir.join(file);
            let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                context: format!("reading {}", path.display()),
                source,
            })?;
            hasher.update(&bytes);
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

/// The root of the source tree this crate was built from.
pub fn repo_root() -> PathBuf {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}
