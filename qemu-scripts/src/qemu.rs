//! Building boot images and running QEMU: the command line, the serial
//! stream, the timeout and the guest's verdict.

use crate::Error;
use crate::setup::{OVMF_CODE, OVMF_VARS};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// QEMU's exit status when the guest wrote `EXIT_SUCCESS` (0x10) to port 0xf4.
pub const GUEST_PASS: i32 = (0x10 << 1) | 1;
/// ... and `EXIT_FAILURE` (0x11).
pub const GUEST_FAIL: i32 = (0x11 << 1) | 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

/// Everything that shapes one QEMU run.
#[derive(Debug, Clone)]
pub struct QemuOptions {
    pub smp: u32,
    pub firmware: Firmware,
    pub accel: String,
    pub memory: String,
    pub cpu: String,
    /// Kill QEMU after this long (`None`: run until the guest ends the run
    /// or the person presses Ctrl-C).
    pub timeout: Option<Duration>,
    pub gdb: bool,
    pub extra: Vec<String>,
    /// Print the serial console as it arrives.
    pub echo: bool,
    /// What QEMU's `-serial stdio` reads (the guest's console input).
    pub input: SerialInput,
    /// Called with each serial line as it arrives (the live views), in
    /// place of printing it when `echo` is on.
    pub on_line: Option<fn(&str)>,
}

/// The guest's console input.
#[derive(Debug, Clone, Default)]
pub enum SerialInput {
    /// Nothing (stdin is /dev/null).
    #[default]
    None,
    /// The person's terminal (`cargo xtask run`): what they type reaches COM1.
    Terminal,
    /// Scripted: each `(after, line)` sends `line` (plus a newline) once a
    /// serial line containing `after` has appeared, in order (the tests).
    Script(Vec<(String, String)>),
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            smp: 4,
            firmware: Firmware::Bios,
            accel: "tcg".into(),
            memory: "256M".into(),
            cpu: "max".into(),
            timeout: None,
            gdb: false,
            extra: Vec::new(),
            echo: true,
            input: SerialInput::None,
            on_line: None,
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// QEMU's exit status (None if killed at the timeout).
    pub status: Option<i32>,
    pub timed_out: bool,
    /// Stopped by Ctrl-C (SIGINT) on the host.
    pub interrupted: bool,
    pub serial: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn verdict(&self) -> &'static str {
        match (self.timed_out, self.status) {
            _ if self.interrupted => "stopped by Ctrl-C",
            (true, _) => "timed out (guest hung)",
            (_, Some(GUEST_PASS)) => "guest reported success",
            (_, Some(GUEST_FAIL)) => "guest reported failure",
            (_, Some(_)) => "QEMU exited without a verdict from the guest (reset, triple fault or QEMU error)",
            (_, None) => "QEMU was killed by a signal",
        }
    }
}

/// Writes `bytes` to `path` unless it already holds them (keeps the mtime,
/// so images depending on it are not rebuilt).
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if std::fs::read(path).map(|old| old == bytes).unwrap_or(false) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| Error::new(format!("writing {}: {e}", path.display())))
}

fn newer_than(target: &Path, inputs: &[&Path]) -> bool {
    let Ok(t) = target.metadata().and_then(|m| m.modified()) else { return false };
    inputs.iter().all(|i| i.metadata().and_then(|m| m.modified()).map(|m| m <= t).unwrap_or(false))
}

/// Builds (or reuses) the disk image for `kernel` + `ramdisk`.
pub fn image(builder: &Path, kernel: &Path, ramdisk: &Path, firmware: Firmware, out: &Path) -> Result<(), Error> {
    if newer_than(out, &[builder, kernel, ramdisk]) {
        return Ok(());
    }
    let flag = match firmware {
        Firmware::Bios => "--bios",
        Firmware::Uefi => "--uefi",
    };
    crate::run_checked(
        Command::new(builder).arg("--kernel").arg(kernel).arg("--ramdisk").arg(ramdisk).arg(flag).arg(out),
        "image-builder",
    )
}

/// The QEMU command line for `image`.
pub fn command(opts: &QemuOptions, image: &Path, work_dir: &Path) -> Result<Command, Error> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", &opts.accel, "-cpu", &opts.cpu, "-smp", &opts.smp.to_string(), "-m", &opts.memory]);
    cmd.args(["-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if opts.firmware == Firmware::Uefi {
        let vars = work_dir.join("OVMF_VARS.fd");
        std::fs::copy(OVMF_VARS, &vars).map_err(|e| Error::new(format!("copying {OVMF_VARS}: {e}")))?;
        cmd.arg("-drive").arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"));
        cmd.arg("-drive").arg(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    cmd.arg("-drive").arg(format!("format=raw,file={},snapshot=on", image.display()));
    if opts.gdb {
        cmd.args(["-s", "-S"]);
    }
    cmd.args(&opts.extra);
    Ok(cmd)
}

/// Shell-quoted text of a command, for printing.
pub fn show(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    for arg in cmd.get_args() {
        let a = arg.to_string_lossy();
        if a.chars().all(|c| c.is_ascii_alphanumeric() || ",.=/_-:".contains(c)) {
            parts.push(a.into_owned());
        } else {
            parts.push(format!("'{}'", a.replace('\'', r"'\''")));
        }
    }
    parts.join(" ")
}

/// Set when the person presses Ctrl-C: the run loop stops QEMU and reports it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler once. QEMU, in the same process group, gets
/// the SIGINT too and may exit first; either way the outcome says so.
fn catch_ctrl_c() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if let Err(e) = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)) {
            eprintln!("xtask: cannot catch Ctrl-C ({e}); it will end xtask without a summary");
        }
    });
}

/// Runs QEMU, streams and records the serial console, enforces the timeout.
pub fn run(mut cmd: Command, opts: &QemuOptions, log_path: &Path) -> Result<Outcome, Error> {
    let started = Instant::now();
    let stdin = match opts.input {
        SerialInput::None => Stdio::null(),
        SerialInput::Terminal => Stdio::inherit(),
        SerialInput::Script(_) => Stdio::piped(),
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("cannot start qemu-system-x86_64: {e}")))?;
    let serial = Arc::new(Mutex::new(String::new()));
    let mut log = std::fs::File::create(log_path).map_err(|e| Error::new(format!("{}: {e}", log_path.display())))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let sink = Arc::clone(&serial);
    let echo = opts.echo;
    let on_line = opts.on_line;
    let mut script: std::collections::VecDeque<(String, String)> = match &opts.input {
        SerialInput::Script(lines) => lines.iter().cloned().collect(),
        _ => Default::default(),
    };
    let mut guest_input = child.stdin.take();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
            let text = String::from_utf8_lossy(&line).replace('\r', "");
            let _ = log.write_all(text.as_bytes());
            while script.front().is_some_and(|(after, _)| text.contains(after.as_str())) {
                let (_, input) = script.pop_front().expect("checked");
                if let Some(stdin) = guest_input.as_mut() {
                    let _ = stdin.write_all(format!("{input}\n").as_bytes());
                    let _ = stdin.flush();
                }
            }
            if let Some(on_line) = on_line {
                on_line(&text);
            } else if echo {
                print!("{text}");
                let _ = std::io::stdout().flush();
            }
            sink.lock().unwrap().push_str(&text);
            line.clear();
        }
    });
    let err_sink = Arc::clone(&serial);
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        if !text.trim().is_empty() {
            eprint!("qemu: {text}");
            err_sink.lock().unwrap().push_str(&format!("[qemu stderr] {text}"));
        }
    });
    let deadline = opts.timeout.map(|t| started + t);
    catch_ctrl_c();
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status.code(), false),
            Ok(None) if INTERRUPTED.load(Ordering::SeqCst) => {
                let _ = child.kill();
                let _ = child.wait();
                break (None, false);
            }
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) && !opts.gdb => {
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::new(format!("waiting for QEMU: {e}"))),
        }
    };
    let _ = reader.join();
    let _ = err_reader.join();
    let serial = serial.lock().unwrap().clone();
    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    Ok(Outcome { status, timed_out, interrupted, serial, elapsed: started.elapsed() })
}

/// Folder for one run's image, ramdisk and logs.
pub fn run_dir(root: &Path, name: &str) -> Result<PathBuf, Error> {
    let dir = root.join("target").join("qemu").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}
