//! The Debian package as an operator gets it: `cargo deb` builds it (the README's
//! command, a release build), its metadata, files, conffile and maintainer scripts are
//! checked, it is installed, and the installed binary runs from the installed
//! configuration: it tells systemd's readiness socket `READY=1` (a socket of the test's
//! own, as `NOTIFY_SOCKET`) and answers an OPTIONS with `200`.
//!
//! How it is installed depends on where the test runs, so that it never damages a
//! developer's machine:
//! - on CI (`CI=true`), as root, with no sihai package installed yet: for real, with
//!   `apt-get install ./sihai_*.deb` (its user, directories and unit on the machine); the
//!   daemon runs as user `sihai` on the installed data directory; then
//!   `apt-get purge`, and what the test created is removed.
//! - anywhere else: unpacked into a temporary root (`dpkg-deb -x`) and its postinst run
//!   there as dpkg would for another root (`DPKG_ROOT`), under fakeroot: the same
//!   `systemd-sysusers` and `systemd-tmpfiles`, writing only inside that root; the
//!   daemon's store and recordings go to a temporary directory.
//!
//! Only the listening ports (SIP and the admin API) are changed in a copy of the installed
//! configuration, to free loopback ports.

mod support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{SIHAI, UdpClient, free_port, options, repo_path, status_of};

/// The release build `cargo deb` runs: minutes the first time on a small machine.
const BUILD_LIMIT: Duration = Duration::from_secs(40 * 60);
/// apt, dpkg, the maintainer scripts.
const INSTALL_LIMIT: Duration = Duration::from_secs(3 * 60);
/// The unit's TimeoutStopSec: the daemon must stop within what systemd allows it.
const STOP_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn the_packaged_configuration_is_the_sample_with_installed_paths() {
    // One file to edit: the package's copy is the sample with the documented
    // substitutions (packaging/deb/make-config), and it is a valid configuration.
    let check = Command::new(repo_path("packaging/deb/make-config"))
        .arg("--check")
        .output()
        .expect("run packaging/deb/make-config");
    assert!(
        check.status.success(),
        "packaging/deb/sihai.toml is not the sample with the installed paths:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let installed =
        fs::read_to_string(repo_path("packaging/deb/sihai.toml")).expect("read the packaged file");
    for line in [
        "sqlite = \"/var/lib/sihai/sihai.db\"",
        "recordings = \"/var/lib/sihai/recordings\"",
        "prompts = \"/usr/share/sihai/prompts\"",
    ] {
        assert!(
            installed.lines().any(|l| l == line),
            "no line {line:?} in the packaged configuration"
        );
    }
    let ok = run_ok(
        Command::new(SIHAI)
            .args(["check", "-c"])
            .arg(repo_path("packaging/deb/sihai.toml")),
        Duration::from_secs(30),
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(": ok"));
}

#[test]
fn the_package_builds_installs_and_its_installed_daemon_is_ready_and_answers_options() {
    let work = tempfile::tempdir().expect("temp dir");
    let deb = build_package(work.path());

    // The control fields.
    let field = |name: &str| {
        let out = run_ok(
            Command::new("dpkg-deb").arg("--field").arg(&deb).arg(name),
            Duration::from_secs(30),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(field("Package"), "sihai");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert_eq!(field("Section"), "net");
    let depends = field("Depends");
    for needed in [
        "libc6",
        "systemd (>= 238) | systemd-sysusers",
        "systemd (>= 238) | systemd-tmpfiles",
    ] {
        assert!(
            depends.contains(needed),
            "Depends {depends:?} lacks {needed}"
        );
    }

    // The files, with their modes.
    let contents = run_ok(
        Command::new("dpkg-deb").arg("--contents").arg(&deb),
        Duration::from_secs(30),
    );
    let contents = String::from_utf8_lossy(&contents.stdout).into_owned();
    let mode_of = |path: &str| {
        contents
            .lines()
            .find(|line| line.ends_with(&format!(" .{path}")))
            .and_then(|line| line.split_whitespace().next())
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{contents}"))
            .to_owned()
    };
    assert_eq!(mode_of("/usr/bin/sihai"), "-rwxr-xr-x");
    assert_eq!(
        mode_of("/etc/sihai/sihai.toml"),
        "-rw-r-----",
        "the configuration holds secrets"
    );
    for path in [
        "/usr/lib/systemd/system/sihai.service",
        "/usr/lib/sysusers.d/sihai.conf",
        "/usr/lib/tmpfiles.d/sihai.conf",
        "/usr/share/doc/sihai/copyright",
        "/usr/share/doc/sihai/deployment.md",
    ] {
        assert_eq!(mode_of(path), "-rw-r--r--", "{path}");
    }
    let prompts = fs::read_dir(repo_path("config/prompts")).expect("read config/prompts");
    let mut shipped = 0;
    for prompt in prompts {
        let name = prompt.expect("a prompt").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".wav") {
            mode_of(&format!("/usr/share/sihai/prompts/{name}"));
            shipped += 1;
        }
    }
    assert!(shipped >= 10, "only {shipped} prompts in config/prompts");

    // The control archive: the conffile and the maintainer scripts.
    let control = work.path().join("control");
    run_ok(
        Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control),
        Duration::from_secs(30),
    );
    let conffiles = fs::read_to_string(control.join("conffiles")).expect("a conffiles file");
    assert_eq!(conffiles.trim(), "/etc/sihai/sihai.toml");
    let postinst = fs::read_to_string(control.join("postinst")).expect("a postinst");
    assert!(postinst.contains("systemd-sysusers"), "{postinst}");
    assert!(postinst.contains("systemd-tmpfiles"), "{postinst}");
    for script in ["postinst", "prerm", "postrm"] {
        run_ok(
            Command::new("sh").arg("-n").arg(control.join(script)),
            Duration::from_secs(10),
        );
    }

    let install = if real_install_allowed() {
        eprintln!(
            "installing {} on this machine with apt-get (CI, root)",
            deb.display()
        );
        Install::real(&deb)
    } else {
        eprintln!(
            "unpacking {} into a temporary root (a real install only on CI as root)",
            deb.display()
        );
        Install::unpacked(&deb, &control.join("postinst"), work.path())
    };
    let root = install.root.clone();
    let installed = |path: &str| root.join(path.trim_start_matches('/'));

    // The user and the directories the maintainer scripts made.
    let passwd = fs::read_to_string(installed("/etc/passwd")).expect("read passwd");
    let user = passwd
        .lines()
        .find(|line| line.starts_with("sihai:"))
        .unwrap_or_else(|| panic!("no sihai user in {}", installed("/etc/passwd").display()));
    let user: Vec<&str> = user.split(':').collect();
    let (uid, gid): (u32, u32) = (user[2].parse().expect("uid"), user[3].parse().expect("gid"));
    assert!(uid < 1000, "a system user: uid {uid}");
    assert_eq!(user[5], "/var/lib/sihai", "its home is the data directory");
    assert!(
        user[6].ends_with("nologin"),
        "it cannot log in: {}",
        user[6]
    );
    for (path, owner, mode) in [
        ("/var/lib/sihai", (uid, gid), 0o750),
        ("/var/lib/sihai/recordings", (uid, gid), 0o750),
        ("/etc/sihai", (0, gid), 0o750),
        ("/etc/sihai/sihai.toml", (0, gid), 0o640),
    ] {
        assert_eq!(
            install.owner_and_mode(path),
            (owner, mode),
            "owner and mode of {path}"
        );
    }

    // The installed configuration is the sample with the installed paths.
    let config_text =
        fs::read_to_string(installed("/etc/sihai/sihai.toml")).expect("read the configuration");
    let generated = run_ok(
        Command::new(repo_path("packaging/deb/make-config")).arg("--stdout"),
        Duration::from_secs(30),
    );
    assert!(
        config_text.as_bytes() == generated.stdout,
        "the installed /etc/sihai/sihai.toml is not make-config's output"
    );

    // The installed binary.
    let sihai = installed("/usr/bin/sihai");
    let version = run_ok(
        Command::new(&sihai).arg("--version"),
        Duration::from_secs(10),
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("sihai {}", env!("CARGO_PKG_VERSION"))
    );
    run_ok(
        Command::new(&sihai)
            .args(["check", "-c"])
            .arg(installed("/etc/sihai/sihai.toml")),
        Duration::from_secs(30),
    );

    // The unit.
    let unit_path = installed("/usr/lib/systemd/system/sihai.service");
    let unit = fs::read_to_string(&unit_path).expect("read the unit");
    let settings: Vec<&str> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for setting in [
        "Type=notify",
        "User=sihai",
        "ExecStart=/usr/bin/sihai run -c /etc/sihai/sihai.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "TimeoutStopSec=60s",
        "LimitNOFILE=32768",
        "StateDirectory=sihai",
        "ProtectSystem=strict",
    ] {
        assert!(
            settings.contains(&setting),
            "the unit lacks {setting}:\n{unit}"
        );
    }
    verify_unit(&unit, &root, work.path());

    // The installed daemon from the installed configuration, on free ports.
    let run_dir = tempfile::tempdir().expect("temp dir");
    // Readable (and the notify socket writable) by the daemon's user on a real install.
    fs::set_permissions(run_dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let (sip_port, api_port) = (free_port(), free_port());
    let mut text = replace_all(
        &config_text,
        "address = \"127.0.0.1:5060\"",
        &format!("address = \"127.0.0.1:{sip_port}\""),
        2,
    );
    text = replace_all(
        &text,
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"127.0.0.1:{api_port}\""),
        1,
    );
    if !install.is_real() {
        let data = run_dir.path().join("data");
        text = replace_all(
            &text,
            "sqlite = \"/var/lib/sihai/sihai.db\"",
            &format!("sqlite = \"{}\"", data.join("sihai.db").display()),
            1,
        );
        text = replace_all(
            &text,
            "recordings = \"/var/lib/sihai/recordings\"",
            &format!("recordings = \"{}\"", data.join("recordings").display()),
            1,
        );
        text = replace_all(
            &text,
            "prompts = \"/usr/share/sihai/prompts\"",
            &format!(
                "prompts = \"{}\"",
                installed("/usr/share/sihai/prompts").display()
            ),
            1,
        );
        fs::create_dir(&data).expect("data directory");
    }
    let config = run_dir.path().join("sihai.toml");
    fs::write(&config, text).expect("write the configuration");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");

    let notify_path = run_dir.path().join("notify");
    let systemd = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    fs::set_permissions(&notify_path, fs::Permissions::from_mode(0o666)).expect("chmod");
    let log = run_dir.path().join("sihai.log");
    let mut command = if install.is_real() {
        // As the unit runs it: user sihai, in its data directory.
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=sihai", "--regid=sihai", "--init-groups", "--"])
            .arg(&sihai)
            .current_dir("/var/lib/sihai");
        command
    } else {
        let mut command = Command::new(&sihai);
        command.current_dir(run_dir.path());
        command
    };
    command
        .args(["run", "-c"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log file"));
    let mut daemon = Running(command.spawn().expect("start the installed sihai"));
    let log_text = || fs::read_to_string(&log).unwrap_or_default();

    let ready = receive(&systemd, &mut daemon.0, Duration::from_secs(30))
        .unwrap_or_else(|why| panic!("no READY=1: {why}\n{}", log_text()));
    assert!(
        ready.starts_with("READY=1\n"),
        "the first notification is READY=1: {ready:?}"
    );
    assert!(
        ready.contains(&format!("UDP 127.0.0.1:{sip_port}")),
        "STATUS names the listeners: {ready:?}"
    );
    // Ready means listening: one OPTIONS, no retry.
    let client = UdpClient::new();
    client.send(
        &options(&client, sip_port, "installed-ready"),
        ([127, 0, 0, 1], sip_port).into(),
    );
    let answer = client
        .recv_within(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer to OPTIONS once ready:\n{}", log_text()));
    assert_eq!(
        status_of(&answer),
        Some(200),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    if install.is_real() {
        let store = Path::new("/var/lib/sihai/sihai.db");
        let meta = fs::metadata(store).expect("the store in /var/lib/sihai");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (uid, gid),
            "the store is the daemon's user's"
        );
    }

    // SIGTERM: STOPPING=1, then an exit within the unit's stop timeout.
    run_ok(
        Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]),
        Duration::from_secs(10),
    );
    let stopping = receive(&systemd, &mut daemon.0, Duration::from_secs(10))
        .unwrap_or_else(|why| panic!("no STOPPING=1: {why}\n{}", log_text()));
    // With a stop timeout that outlasts the running drain time (the sample's 30 s), the
    // last BYEs' grace (4 s) and a margin (10 s).
    assert_eq!(stopping, "STOPPING=1\nEXTEND_TIMEOUT_USEC=44000000");
    let deadline = Instant::now() + STOP_LIMIT;
    let status = loop {
        if let Some(status) = daemon.0.try_wait().expect("wait for sihai") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "sihai did not stop within {STOP_LIMIT:?}:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log_text();
    assert!(status.success(), "sihai exited with {status}:\n{log}");
    // A clean start and stop: every prompt found, nothing refused. Two warnings are the
    // sample's own: its enterprises start with no money, below its suspend_below, and are
    // suspended until an operator funds them, and the notice of that goes to its example
    // webhook on 127.0.0.1:8089, where nothing listens.
    let complaints: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .filter(|line| {
            !line.contains("account suspended") && !line.contains("account alert failed")
        })
        .collect();
    assert!(
        complaints.is_empty(),
        "the installed configuration made the daemon complain:\n{}",
        complaints.join("\n")
    );

    install.remove();
}

/// Runs `cargo deb` into `out` and returns the one `.deb` it made.
fn build_package(out: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let present = Command::new(&cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        present,
        "cargo-deb is not installed, so the package cannot be built: \
         `cargo install cargo-deb --locked` (./scripts/test installs it)"
    );
    let dir = out.join("debian");
    run_ok(
        Command::new(&cargo)
            .args(["deb", "--locked", "--output"])
            .arg(&dir)
            .current_dir(env!("CARGO_MANIFEST_DIR")),
        BUILD_LIMIT,
    );
    let debs: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("cargo deb's output directory")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one package: {debs:?}");
    debs.into_iter().next().expect("the package")
}

/// A real installation only where it cannot hurt: a CI machine, as root, that has no
/// sihai package of its own.
fn real_install_allowed() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let installed_already = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "sihai"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"));
    ci && root && !installed_already
}

/// Where and how the package was installed; [`Install::remove`] (or a failed test, on
/// drop) takes it away again.
struct Install {
    root: PathBuf,
    kind: Kind,
    removed: bool,
}

enum Kind {
    /// apt-get on this machine; what the test made besides the package, to remove.
    Real {
        created_data_dir: bool,
        created_user: bool,
    },
    /// Unpacked into `root`, with each path's owner and mode as fakeroot saw them once
    /// the postinst ran.
    Unpacked {
        owners: Vec<(String, (u32, u32), u32)>,
        _root: tempfile::TempDir,
    },
}

impl Install {
    fn real(deb: &Path) -> Install {
        let created_data_dir = !Path::new("/var/lib/sihai").exists();
        let created_user = !Command::new("getent")
            .args(["passwd", "sihai"])
            .output()
            .is_ok_and(|o| o.status.success());
        let install = Install {
            root: PathBuf::from("/"),
            kind: Kind::Real {
                created_data_dir,
                created_user,
            },
            removed: false,
        };
        run_ok(
            Command::new("apt-get")
                .args(["install", "-y", "-q"])
                .arg(deb)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            INSTALL_LIMIT,
        );
        install
    }

    fn unpacked(deb: &Path, postinst: &Path, work: &Path) -> Install {
        let root = tempfile::tempdir_in(work).expect("a root to install into");
        run_ok(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()),
            INSTALL_LIMIT,
        );
        let fakeroot = Command::new("fakeroot")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            fakeroot,
            "fakeroot is missing, so the postinst cannot run in a temporary root: \
             apt-get install fakeroot (./scripts/test installs it)"
        );
        // Ownership exists only inside fakeroot's session: read it there.
        let paths = [
            "/var/lib/sihai",
            "/var/lib/sihai/recordings",
            "/etc/sihai",
            "/etc/sihai/sihai.toml",
        ];
        let mut script = String::from("sh \"$POSTINST\" configure && cd \"$DPKG_ROOT\"");
        for path in paths {
            script.push_str(&format!(" && stat -c '%u %g %a %n' .{path}"));
        }
        let out = run_ok(
            Command::new("fakeroot")
                .args(["sh", "-c", &script])
                .env("POSTINST", postinst)
                .env("DPKG_ROOT", root.path()),
            INSTALL_LIMIT,
        );
        let owners = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let number = |i: usize| fields[i].parse::<u32>().expect("a number");
                let mode = u32::from_str_radix(fields[2], 8).expect("an octal mode");
                (
                    fields[3].trim_start_matches('.').to_owned(),
                    (number(0), number(1)),
                    mode,
                )
            })
            .collect();
        Install {
            root: root.path().to_path_buf(),
            kind: Kind::Unpacked {
                owners,
                _root: root,
            },
            removed: false,
        }
    }

    fn is_real(&self) -> bool {
        matches!(self.kind, Kind::Real { .. })
    }

    /// `path`'s owner (uid, gid) and permission bits as installed.
    fn owner_and_mode(&self, path: &str) -> ((u32, u32), u32) {
        match &self.kind {
            Kind::Real { .. } => {
                let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
                ((meta.uid(), meta.gid()), meta.mode() & 0o7777)
            }
            Kind::Unpacked { owners, .. } => owners
                .iter()
                .find(|(p, _, _)| p == path)
                .map(|(_, owner, mode)| (*owner, *mode))
                .unwrap_or_else(|| panic!("{path} was not made by the postinst")),
        }
    }

    /// Purges a real installation: the binary, the unit and the configuration go; the
    /// data directory stays (call records and the ledger are the operator's to delete),
    /// and is removed here only if the test made it, as is the user.
    fn remove(mut self) {
        self.removed = true;
        let Kind::Real {
            created_data_dir,
            created_user,
        } = self.kind
        else {
            return;
        };
        run_ok(
            Command::new("apt-get")
                .args(["purge", "-y", "-q", "sihai"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            INSTALL_LIMIT,
        );
        for gone in [
            "/usr/bin/sihai",
            "/etc/sihai/sihai.toml",
            "/usr/lib/systemd/system/sihai.service",
        ] {
            assert!(!Path::new(gone).exists(), "{gone} is left after a purge");
        }
        assert!(
            Path::new("/var/lib/sihai/sihai.db").exists(),
            "a purge keeps the store"
        );
        clean_up_real(created_data_dir, created_user);
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // A failed assertion: take the package away all the same, quietly.
        if let Kind::Real {
            created_data_dir,
            created_user,
        } = self.kind
        {
            let _ = Command::new("apt-get")
                .args(["purge", "-y", "-q", "sihai"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            clean_up_real(created_data_dir, created_user);
        }
    }
}

fn clean_up_real(created_data_dir: bool, created_user: bool) {
    if created_data_dir {
        let _ = fs::remove_dir_all("/var/lib/sihai");
    }
    if created_user {
        let _ = Command::new("userdel").arg("sihai").status();
        // userdel takes the user's own group with it on Debian; any left is removed too.
        if Command::new("getent")
            .args(["group", "sihai"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            let _ = Command::new("groupdel").arg("sihai").status();
        }
    }
}

/// `systemd-analyze verify` on the installed unit, when the tool is there. It must say
/// nothing: it reports unknown keys and bad values as warnings and still exits 0. For an
/// unpacked root, the unit is verified with its binary's path inside that root (the only
/// change), since the tool checks that ExecStart's program exists.
fn verify_unit(unit: &str, root: &Path, work: &Path) {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the unit's syntax is not verified");
        return;
    }
    let dir = work.join("unit");
    fs::create_dir_all(&dir).expect("a directory for the unit");
    let binary = root.join("usr/bin/sihai");
    let unit = unit.replace("/usr/bin/sihai", &binary.display().to_string());
    let path = dir.join("sihai.service");
    fs::write(&path, unit).expect("write the unit");
    let out = run_ok(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        Duration::from_secs(60),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify complains about the unit:\n{said}"
    );
}

/// `text` with `from` replaced by `to`, which must occur exactly `count` times.
fn replace_all(text: &str, from: &str, to: &str, count: usize) -> String {
    assert_eq!(
        text.matches(from).count(),
        count,
        "{from:?} in the installed configuration"
    );
    text.replace(from, to)
}

/// Kills the daemon if the test ends before it stops.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The next notification on `socket`, waiting up to `within` while `daemon` runs.
fn receive(socket: &UnixDatagram, daemon: &mut Child, within: Duration) -> Result<String, String> {
    let deadline = Instant::now() + within;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            return Err(format!("sihai exited with {status}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("nothing within {within:?}"));
        }
    }
}

/// Runs `command` to completion within `limit` (killed after it), its output captured;
/// panics with that output unless it exits 0.
fn run_ok(command: &mut Command, limit: Duration) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &Path| {
        let mut bytes = Vec::new();
        if let Ok(mut file) = fs::File::open(path) {
            let _ = file.read_to_end(&mut bytes);
        }
        bytes
    };
    let (stdout, stderr) = (read(&out_path), read(&err_path));
    let Some(status) = status else {
        panic!(
            "{command:?} did not finish within {limit:?}:\n{}",
            String::from_utf8_lossy(&stderr)
        );
    };
    assert!(
        status.success(),
        "{command:?} failed with {status}:\n{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    Output {
        status,
        stdout,
        stderr,
    }
}
