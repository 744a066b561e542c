//! `voxd install-service`: voxd started at login (a systemd user unit on Linux, a launchd
//! LaunchAgent on macOS), or the steps for a system service.
//!
//! The files in `systemd/` and `launchd/` at the repository root are the templates, compiled
//! in: installing one puts the real path of this voxd binary and of the config file into
//! the command line, and changes nothing else, so the repository's files are what runs.
//! voxd never runs `systemctl` or `launchctl` unless asked to (`--enable`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::paths;

const USER_UNIT: &str = include_str!("../../systemd/voxd.service");
const SYSTEM_UNIT: &str = include_str!("../../systemd/voxd-system.service");
const LAUNCH_AGENT: &str = include_str!("../../launchd/org.voxd.voxd.plist");

/// What the templates say before installation puts in the real paths.
const TEMPLATE_BINARY: &str = "/usr/local/bin/voxd";
const TEMPLATE_PLIST_CONFIG: &str = "/Users/USER/Library/Application Support/voxd/config.toml";
const TEMPLATE_PLIST_LOG: &str = "/Users/USER/Library/Logs/voxd.log";

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot tell where this voxd binary is: {0}")]
    NoBinary(#[source] std::io::Error),
    #[error("cannot tell where the user's service files go (no home folder)")]
    NoHome,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status})")]
    Command { command: String, status: String },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// `voxd install-service` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceOptions {
    /// Print the steps that install the system service instead (Linux; run them as root).
    pub system: bool,
    /// Print the file and where it would go; write nothing.
    pub dry_run: bool,
    /// Also load and start the service now.
    pub enable: bool,
}

/// A unit file's ExecStart/ProgramArguments value: systemd splits on spaces and expands
/// `%` specifiers and `$` variables, so those are quoted and doubled.
fn systemd_arg(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    if escaped
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'')
    {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `template` with its `ExecStart=` line replaced by `exec_start`.
fn with_exec_start(template: &str, exec_start: &str) -> String {
    template
        .lines()
        .map(|line| {
            if line.starts_with("ExecStart=") {
                format!("ExecStart={exec_start}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The systemd user unit running `exe run --config config`.
pub fn user_unit(exe: &Path, config: &Path) -> String {
    let exec = format!(
        "{} run --config {}",
        systemd_arg(&exe.to_string_lossy()),
        systemd_arg(&config.to_string_lossy())
    );
    with_exec_start(USER_UNIT, &exec)
}

/// The system unit, with voxd at `exe` (the config is [`paths::SYSTEM_CONFIG_FILE`]).
pub fn system_unit(exe: &Path) -> String {
    let exec = format!(
        "{} run --config {}",
        systemd_arg(&exe.to_string_lossy()),
        paths::SYSTEM_CONFIG_FILE
    );
    with_exec_start(SYSTEM_UNIT, &exec)
}

/// The LaunchAgent running `exe run --config config`, logging to `log`.
pub fn launch_agent(exe: &Path, config: &Path, log: &Path) -> String {
    let string = |s: &str| format!("<string>{s}</string>");
    LAUNCH_AGENT
        .replace(
            &string(TEMPLATE_BINARY),
            &string(&xml_escape(&exe.to_string_lossy())),
        )
        .replace(
            &string(TEMPLATE_PLIST_CONFIG),
            &string(&xml_escape(&config.to_string_lossy())),
        )
        .replace(
            &string(TEMPLATE_PLIST_LOG),
            &string(&xml_escape(&log.to_string_lossy())),
        )
}

/// This binary, links resolved (a unit must not depend on the shell's PATH).
fn current_binary() -> Result<PathBuf, ServiceError> {
    let exe = std::env::current_exe().map_err(ServiceError::NoBinary)?;
    Ok(exe.canonicalize().unwrap_or(exe))
}

/// Runs `voxd install-service`; `config` is `--config`, if given.
pub fn run(args: &ServiceOptions, config: Option<&Path>) -> Result<(), ServiceError> {
    let exe = current_binary()?;
    if args.system {
        print!("{}", system_steps(&exe, config));
        return Ok(());
    }
    let config = match config {
        Some(c) => paths::absolute(c),
        None => paths::config_file().ok_or(ServiceError::NoHome)?,
    };
    let target = paths::user_service_file().ok_or(ServiceError::NoHome)?;
    let (text, commands) = if cfg!(target_os = "macos") {
        let log = paths::home_dir()
            .ok_or(ServiceError::NoHome)?
            .join("Library/Logs/voxd.log");
        let domain = format!("gui/{}", current_uid());
        (
            launch_agent(&exe, &config, &log),
            vec![vec![
                "launchctl".to_string(),
                "bootstrap".to_string(),
                domain,
                target.display().to_string(),
            ]],
        )
    } else {
        (
            user_unit(&exe, &config),
            vec![
                vec!["systemctl".into(), "--user".into(), "daemon-reload".into()],
                vec![
                    "systemctl".into(),
                    "--user".into(),
                    "enable".into(),
                    "--now".into(),
                    "voxd".into(),
                ],
            ],
        )
    };
    let shown: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
    if args.dry_run {
        println!("# would write {}:", target.display());
        print!("{text}");
        println!("# then: {}", shown.join(" && "));
        return Ok(());
    }
    if !config.exists() {
        eprintln!(
            "voxd: note: {} does not exist yet; the service reads it at start (copy the \
             repository's config.toml there and edit it, then check with `voxd doctor`)",
            config.display()
        );
    }
    if exe.components().any(|c| c.as_os_str() == "target") {
        eprintln!(
            "voxd: note: the service runs {}, a build output that the next build replaces; \
             `cargo install --path .` gives voxd a lasting place",
            exe.display()
        );
    }
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServiceError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    super::models::write_atomically(&target, text.as_bytes()).map_err(|e| ServiceError::Io {
        path: target.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    println!("wrote {}", target.display());
    if args.enable {
        for command in &commands {
            run_command(command)?;
        }
        println!("voxd is enabled and started");
        if !cfg!(target_os = "macos") {
            println!("its log: journalctl --user -u voxd -f");
        }
    } else {
        println!(
            "to start it now and at every login:\n  {}",
            shown.join(" && ")
        );
    }
    Ok(())
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn run_command(argv: &[String]) -> Result<(), ServiceError> {
    let shown = argv.join(" ");
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .map_err(|source| ServiceError::Spawn {
            command: shown.clone(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(ServiceError::Command {
            command: shown,
            status: status.to_string(),
        })
    }
}

/// The steps that install the system service, as a root shell would run them.
pub fn system_steps(exe: &Path, config: Option<&Path>) -> String {
    let config = config
        .map(paths::absolute)
        .unwrap_or_else(|| PathBuf::from("config.toml"));
    let unit = system_unit(Path::new(TEMPLATE_BINARY));
    format!(
        "# voxd as a system service (Linux). Run these as root; read the notes in the unit\n\
         # below first: its sandbox limits what your actions can do.\n\
         \n\
         # 1. the binary, and a user of its own that may open the sound devices\n\
         install -m 0755 {exe} {TEMPLATE_BINARY}\n\
         useradd --system --user-group --groups audio --home-dir /var/lib/voxd --shell /usr/sbin/nologin voxd\n\
         \n\
         # 2. config and grammars in /etc/voxd; in the config set [model] path =\n\
         #    \"{models}/tiny.en\" and [audio] device to a hardware device from `voxd devices`\n\
         install -d -m 0755 /etc/voxd\n\
         install -m 0644 {config} {SYSTEM_CONFIG_FILE}\n\
         cp -r grammars /etc/voxd/\n\
         \n\
         # 3. the model, owned by the service\n\
         {TEMPLATE_BINARY} models fetch --dest {models} tiny.en\n\
         chown -R voxd:voxd /var/lib/voxd\n\
         \n\
         # 4. the unit, then check the setup as the service will see it and start it\n\
         cat > {unit_path} <<'EOF'\n\
         {unit}EOF\n\
         runuser -u voxd -- {TEMPLATE_BINARY} doctor --config {SYSTEM_CONFIG_FILE}\n\
         systemctl daemon-reload && systemctl enable --now voxd\n\
         journalctl -u voxd -f\n",
        exe = exe.display(),
        config = config.display(),
        models = paths::SYSTEM_MODELS_DIR,
        SYSTEM_CONFIG_FILE = paths::SYSTEM_CONFIG_FILE,
        unit_path = paths::system_service_file().display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_get_the_real_paths_quoted_for_systemd() {
        let unit = user_unit(
            Path::new("/opt/my tools/voxd"),
            Path::new("/home/a/100%/config.toml"),
        );
        let exec: Vec<&str> = unit
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect();
        assert_eq!(
            exec,
            ["ExecStart=\"/opt/my tools/voxd\" run --config /home/a/100%%/config.toml"]
        );
        assert!(unit.contains("Restart=on-failure") && unit.contains("WantedBy=default.target"));
        let system = system_unit(Path::new("/usr/bin/voxd"));
        assert!(system.contains("ExecStart=/usr/bin/voxd run --config /etc/voxd/config.toml"));
        for key in [
            "User=voxd",
            "SupplementaryGroups=audio",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "StateDirectory=voxd",
            "ConfigurationDirectory=voxd",
            "RestrictAddressFamilies=AF_UNIX",
        ] {
            assert!(system.lines().any(|l| l == key), "{key}");
        }
    }

    #[test]
    fn the_launch_agent_gets_the_real_paths_escaped() {
        let plist = launch_agent(
            Path::new("/Applications/R&D/voxd"),
            Path::new("/Users/a/Library/Application Support/voxd/config.toml"),
            Path::new("/Users/a/Library/Logs/voxd.log"),
        );
        assert!(plist.contains("<string>/Applications/R&amp;D/voxd</string>"));
        assert!(plist
            .contains("<string>/Users/a/Library/Application Support/voxd/config.toml</string>"));
        assert_eq!(plist.matches("/Users/a/Library/Logs/voxd.log").count(), 2);
        assert!(!plist.contains("/Users/USER") && !plist.contains(TEMPLATE_BINARY));
    }

    #[test]
    fn system_steps_name_the_user_the_config_and_the_unit() {
        let steps = system_steps(Path::new("/x/voxd"), Some(Path::new("/etc/a.toml")));
        assert!(steps.contains("install -m 0755 /x/voxd /usr/local/bin/voxd"));
        assert!(steps.contains("useradd --system"));
        assert!(steps.contains("install -m 0644 /etc/a.toml /etc/voxd/config.toml"));
        assert!(
            steps.contains("cat > /etc/systemd/system/voxd.service <<'EOF'\n[Unit]")
                || steps.contains("cat > /etc/systemd/system/voxd.service <<'EOF'\n#")
        );
        assert!(steps.contains("systemctl daemon-reload && systemctl enable --now voxd"));
    }
}
