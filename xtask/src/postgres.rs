//! A throwaway Postgres cluster for the test run: the indexer's tests run on SQLite and on
//! Postgres, and CI provides the Postgres.
//!
//! Owns: installing Debian's `postgresql` when its binaries are missing (as root, with
//! apt-get), `initdb` into a fresh temporary directory (as the `postgres` user when run as
//! root, since Postgres refuses to run as root), starting it on a free localhost port, and
//! stopping and deleting it when the [`Cluster`] is dropped. Must never touch another cluster
//! (the system's default one included) or keep data: fsync is off, the directory is removed.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable the indexer's tests read (licen_indexer::testing::POSTGRES_URL_ENV).
pub(crate) const URL_ENV: &str = "LICEN_TEST_POSTGRES_URL";

/// A running throwaway cluster; stopped and deleted on drop.
pub(crate) struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres_user: bool,
    /// `postgres://postgres@127.0.0.1:<port>/postgres`, trust authentication.
    pub(crate) url: String,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn install() -> Result<PathBuf> {
    if let Some(bin) = find_bin() {
        return Ok(bin);
    }
    if !is_root() {
        bail!(
            "Postgres is not installed and this is not root: run `apt-get install -y postgresql` \
             (Debian) or set {URL_ENV} to a server the tests may create databases on"
        );
    }
    eprintln!("postgres: installing Debian's postgresql with apt-get");
    crate::run(Command::new("apt-get").arg("update"))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    find_bin().context("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb")
}

fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free localhost port")?;
    Ok(listener.local_addr()?.port())
}

impl Cluster {
    /// Installs Postgres if needed, then initialises and starts a fresh cluster.
    pub(crate) fn start() -> Result<Self> {
        let bin = install()?;
        let as_postgres_user = is_root();
        let dir = std::env::temp_dir().join(format!("licen-postgres-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing a stale {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cluster = Self {
            bin,
            dir,
            as_postgres_user,
            url: String::new(),
        };
        if as_postgres_user {
            crate::run(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&cluster.dir),
            )?;
        }
        let data = cluster.dir.join("data");
        cluster.pg(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--no-locale".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            cluster.dir.display()
        );
        let log = cluster.dir.join("postgres.log");
        cluster.pg(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )?;
        cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        eprintln!("postgres: throwaway cluster at {}", cluster.url);
        Ok(cluster)
    }

    /// Runs a Postgres program from the cluster's bin dir, as `postgres` when we are root.
    fn pg(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir);
        crate::run(&mut command)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        if Path::new(&data).join("postmaster.pid").exists() {
            let stopped = self.pg(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            );
            if let Err(e) = stopped {
                eprintln!("postgres: could not stop the throwaway cluster: {e:#}");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("postgres: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// `cargo xtask with-postgres <command…>`: runs the command with [`URL_ENV`] pointing at a
/// throwaway cluster, which is stopped and deleted afterwards.
pub(crate) fn run_with(command: &[String]) -> Result<()> {
    let Some((program, args)) = command.split_first() else {
        bail!("usage: cargo xtask with-postgres <command> [args…]");
    };
    let cluster = Cluster::start()?;
    let result = crate::run(Command::new(program).args(args).env(URL_ENV, &cluster.url));
    drop(cluster);
    result
}
