//! Guest instructions per message, counted from QEMU's TCG log
//! (`cargo xtask bench instructions`, issue 17): where the ring and the
//! mover spend their work above the stream floor, by function.
//!
//! QEMU runs with `-d in_asm,exec,nochain` and a `-dfilter` over the
//! kernel's text. `in_asm` prints every translation block (TB) once, with
//! its instructions; `exec` prints a `Trace CPU: HOST [CS/PC/FLAGS/CFLAGS]`
//! line each time a TB runs; `nochain` makes every run print (chained TBs
//! would skip the line). A TB's run executes all of its instructions
//! unless an exception leaves it early, which the kernel's measured loops
//! never take, so instructions = sum over TB runs of the TB's length.
//! One exception to that: QEMU prints the line before the TB's first
//! instruction checks for an exit request, so a TB cut off there (an
//! interrupt to deliver, or single-threaded TCG's round-robin kick handing
//! the host thread to the next vCPU) is printed and then printed again
//! when the CPU comes back to it. That over-counts one TB now and then,
//! which does not matter; but a marker function's entry printed twice
//! would start a phase twice, so a marker entry that follows itself on
//! the same CPU (kick), or that the CPU comes back to after an interrupt
//! entry stub ran right after it, is taken as the same call.
//!
//! ```text
//! log line                        what the counter does
//! IN: ...  / 0xADDR: insn ...     records the TB starting at the first ADDR and its length
//! Trace C: ... [cs/PC/...]        one run of the TB at PC on CPU C, added to the current phase
//! PC = entry of a marker function starts a new phase (`stream_send#2`, `mark#3`)
//! ```
//!
//! Phases are cut by function entries the caller names (the kernel's floor
//! functions, the `BENCH_MARK` system call's `mark`), so both CPUs' work
//! between two markers lands in one phase; per-CPU totals keep the sender
//! and the receiver apart. Spinning on an empty ring executes
//! instructions too and is counted (it is what the time measures under
//! single-threaded TCG), under the function that spins.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// A function of the kernel: `[start, start + size)` at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// Executed instructions of one CPU in one phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuCount {
    /// Instructions executed (TB runs times TB length).
    pub instructions: u64,
    /// TB runs (each one a jump through QEMU's dispatcher here).
    pub tb_runs: u64,
    /// Runs of TBs whose length the log never showed (should be 0).
    pub unknown_runs: u64,
    /// Instructions by function name (or `0xADDR` outside every function).
    pub by_function: BTreeMap<String, u64>,
    /// TB runs by the 4 KiB guest page the TB starts on: under TCG a jump
    /// to a block on another page is not chained (a lookup each time), so
    /// a hot loop split across pages costs more per run.
    pub tb_runs_by_page: BTreeMap<u64, u64>,
}

/// Counts a TCG log, line by line.
pub struct Counter {
    functions: Vec<Function>,
    /// Per CPU, the functions of the user program that runs there (user
    /// addresses mean a different program on each CPU).
    cpu_functions: HashMap<u32, Vec<Function>>,
    /// Marker function entry addresses and their short names.
    markers: HashMap<u64, String>,
    /// The kernel's interrupt entry stubs, `[start, end)`.
    interrupt_entries: (u64, u64),
    /// Per CPU, what it ran since a marker entry, if its last TB was one
    /// or it is handling an interrupt taken there (see the module comment).
    after_marker: HashMap<u32, AfterMarker>,
    tb_length: HashMap<u64, u64>,
    /// The TB `in_asm` is printing: start and instructions so far.
    translating: Option<(u64, u64)>,
    seen: HashMap<String, u32>,
    phase: String,
    /// Phase order of first appearance, and per phase, per CPU: TB runs by PC.
    order: Vec<String>,
    runs: HashMap<(String, u32), HashMap<u64, u64>>,
    /// The CPU of the last logged TB run, and per phase how often the next
    /// run was on another CPU (see [`Counter::turns`]).
    last_cpu: Option<u32>,
    turns: HashMap<String, u64>,
}

impl Counter {
    /// `functions` in any order; `markers` are names of functions whose
    /// entry starts a phase (a phase is called by the name's last `::`
    /// part and its count: `floor_send#1`).
    pub fn new(mut functions: Vec<Function>, markers: &[&str]) -> Counter {
        functions.sort_by_key(|f| f.start);
        let markers = functions
            .iter()
            .filter(|f| markers.contains(&f.name.as_str()))
            .map(|f| (f.start, f.name.rsplit("::").next().unwrap_or(&f.name).to_string()))
            .collect();
        Counter {
            functions,
            cpu_functions: HashMap::new(),
            markers,
            interrupt_entries: (0, 0),
            after_marker: HashMap::new(),
            tb_length: HashMap::new(),
            translating: None,
            seen: HashMap::new(),
            phase: "start".to_string(),
            order: vec!["start".to_string()],
            runs: HashMap::new(),
            last_cpu: None,
            turns: HashMap::new(),
        }
    }

    /// Names code at addresses inside `functions` on `cpu` by them (a
    /// server's symbols, for the CPU it runs on), before the kernel's.
    pub fn add_cpu_functions(&mut self, cpu: u32, mut functions: Vec<Function>) {
        functions.sort_by_key(|f| f.start);
        self.cpu_functions.insert(cpu, functions);
    }

    /// The kernel's interrupt entry stubs are `[start, end)`: a marker
    /// entry whose TB an interrupt cut off before it ran is not a call.
    pub fn set_interrupt_entries(&mut self, start: u64, end: u64) {
        self.interrupt_entries = (start, end);
    }

    /// Takes one line of the log.
    pub fn feed(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("Trace ") {
            if let Some((cpu, pc)) = parse_trace(rest) {
                self.run(cpu, pc);
            }
            return;
        }
        if line.starts_with("IN:") {
            self.translating = None;
            return;
        }
        if let Some(address) = line.strip_prefix("0x").and_then(|rest| rest.split(':').next())
            && let Ok(pc) = u64::from_str_radix(address, 16)
        {
            let (start, count) = self.translating.map_or((pc, 1), |(start, count)| (start, count + 1));
            self.translating = Some((start, count));
            self.tb_length.insert(start, count);
            return;
        }
        self.translating = None;
    }

    fn run(&mut self, cpu: u32, pc: u64) {
        let before = self.after_marker.remove(&cpu);
        let interrupt = (self.interrupt_entries.0..self.interrupt_entries.1).contains(&pc);
        let same_call = match before {
            Some(AfterMarker::Entered(entry) | AfterMarker::Interrupted(entry)) if pc == entry => true,
            Some(AfterMarker::Entered(entry)) if interrupt => {
                self.after_marker.insert(cpu, AfterMarker::Interrupted(entry));
                false
            }
            Some(AfterMarker::Interrupted(entry)) => {
                self.after_marker.insert(cpu, AfterMarker::Interrupted(entry));
                false
            }
            _ => false,
        };
        if let Some(name) = self.markers.get(&pc) {
            self.after_marker.insert(cpu, AfterMarker::Entered(pc));
            if !same_call {
                let count = self.seen.entry(name.clone()).or_insert(0);
                *count += 1;
                self.phase = format!("{name}#{count}");
                self.order.push(self.phase.clone());
            }
        }
        *self.runs.entry((self.phase.clone(), cpu)).or_default().entry(pc).or_insert(0) += 1;
        if self.last_cpu.is_some_and(|last| last != cpu) {
            *self.turns.entry(self.phase.clone()).or_insert(0) += 1;
        }
        self.last_cpu = Some(cpu);
    }

    fn function_of(&self, cpu: u32, pc: u64) -> String {
        let find = |functions: &[Function]| {
            let i = functions.partition_point(|f| f.start <= pc);
            match i.checked_sub(1).map(|i| &functions[i]) {
                Some(f) if pc < f.start + f.size.max(1) => Some(f.name.clone()),
                _ => None,
            }
        };
        self.cpu_functions
            .get(&cpu)
            .and_then(|functions| find(functions))
            .or_else(|| find(&self.functions))
            .unwrap_or_else(|| format!("{pc:#x}"))
    }

    /// How often in `phase` a logged TB run was on another CPU than the
    /// one before it. Under single-threaded TCG one host thread runs every
    /// vCPU in turn (a vCPU keeps it until it executes PAUSE or HLT, or the
    /// round-robin kick comes), so this counts the turns: for a message
    /// to cross from one core to another, the thread must move there.
    /// Only logged code counts (the `-dfilter` ranges), so a turn to a CPU
    /// running only unlogged code is not seen.
    pub fn turns(&self, phase: &str) -> u64 {
        self.turns.get(phase).copied().unwrap_or(0)
    }

    /// Phases in the order they started.
    pub fn phases(&self) -> &[String] {
        &self.order
    }

    /// Per CPU counts of `phase` (CPUs that ran nothing in it are absent).
    pub fn counts(&self, phase: &str) -> BTreeMap<u32, CpuCount> {
        let mut out = BTreeMap::new();
        for ((name, cpu), runs) in &self.runs {
            if name != phase {
                continue;
            }
            let mut count = CpuCount::default();
            for (&pc, &n) in runs {
                count.tb_runs += n;
                *count.tb_runs_by_page.entry(pc & !0xfff).or_insert(0) += n;
                match self.tb_length.get(&pc) {
                    Some(&length) => {
                        count.instructions += n * length;
                        *count.by_function.entry(self.function_of(*cpu, pc)).or_insert(0) += n * length;
                    }
                    None => count.unknown_runs += n,
                }
            }
            out.insert(*cpu, count);
        }
        out
    }
}

/// What a CPU ran since a marker function's entry.
#[derive(Clone, Copy, Debug)]
enum AfterMarker {
    /// The entry at this address was the CPU's last TB.
    Entered(u64),
    /// An interrupt entry stub ran right after the entry: until the CPU
    /// is back at the entry, it is handling that interrupt.
    Interrupted(u64),
}

/// `C: HOST [CS/PC/FLAGS/CFLAGS] ...` -> (C, PC).
fn parse_trace(rest: &str) -> Option<(u32, u64)> {
    let (cpu, rest) = rest.split_once(':')?;
    let bracket = rest.split_once('[')?.1;
    let pc = bracket.split('/').nth(1)?;
    Some((cpu.trim().parse().ok()?, u64::from_str_radix(pc, 16).ok()?))
}

/// One phase to report: its name in the log, what it measured, and how
/// many messages (or round trips) it moved.
pub struct ReportedPhase<'a> {
    pub phase: &'a str,
    pub what: &'a str,
    pub messages: u64,
}

/// What makes a count unusable: a phase that is not in the log, a phase
/// whose busiest CPU executed less than one instruction per message, or
/// TB runs whose length the log never showed.
pub fn problems(counter: &Counter, phases: &[ReportedPhase]) -> Vec<String> {
    let mut out = Vec::new();
    for p in phases {
        let counts = counter.counts(p.phase);
        let most = counts.values().map(|c| c.instructions).max().unwrap_or(0);
        if counts.is_empty() {
            out.push(format!("{} ({}): not in the log", p.what, p.phase));
        } else if most < p.messages {
            out.push(format!("{} ({}): {most} instructions for {} messages", p.what, p.phase, p.messages));
        }
        for (cpu, count) in &counts {
            if count.unknown_runs > 0 {
                out.push(format!(
                    "{} ({}), cpu {cpu}: {} TB runs of unknown length",
                    p.what, p.phase, count.unknown_runs
                ));
            }
        }
    }
    out
}

/// The table: per phase and CPU, instructions and TB runs per message, and
/// the functions that executed the most (per message too).
pub fn report(counter: &Counter, phases: &[ReportedPhase], top: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "instructions per message (executed guest instructions / messages; TB = translation block)");
    for p in phases {
        let counts = counter.counts(p.phase);
        if counts.is_empty() {
            let _ = writeln!(out, "\n{} ({}): not in the log", p.what, p.phase);
            continue;
        }
        let _ = writeln!(out, "\n{} ({}, {} messages)", p.what, p.phase, p.messages);
        let per = |n: u64| n as f64 / p.messages.max(1) as f64;
        let _ = writeln!(
            out,
            "  vCPU turns: {:.2}/message (the emulator's one host thread moving from one vCPU to another)",
            per(counter.turns(p.phase))
        );
        for (cpu, count) in &counts {
            if count.instructions < p.messages {
                continue; // a CPU that only passed by (the BSP posting work)
            }
            let _ = writeln!(
                out,
                "  cpu {cpu}: {:.1} instructions/message, {:.1} TB runs/message{}",
                per(count.instructions),
                per(count.tb_runs),
                if count.unknown_runs > 0 {
                    format!(", {} TB runs of unknown length", count.unknown_runs)
                } else {
                    String::new()
                }
            );
            let mut pages: Vec<(&u64, &u64)> = count.tb_runs_by_page.iter().collect();
            pages.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let shares: Vec<String> = pages
                .iter()
                .take(4)
                .filter(|(_, n)| **n * 100 >= count.tb_runs.max(1))
                .map(|(page, n)| format!("{page:#x} {:.0} %", **n as f64 * 100.0 / count.tb_runs.max(1) as f64))
                .collect();
            let _ = writeln!(out, "    TB runs by 4 KiB page (1 % and more): {}", shares.join(", "));
            let mut functions: Vec<(&String, &u64)> = count.by_function.iter().collect();
            functions.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (name, n) in functions.into_iter().take(top) {
                let _ = writeln!(out, "    {:>9.1}  {name}", per(*n));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions() -> Vec<Function> {
        vec![
            Function { start: 0x2000, size: 0x100, name: "k::floors::floor_receive".into() },
            Function { start: 0x1000, size: 0x100, name: "k::floors::floor_send".into() },
            Function { start: 0x3000, size: 0x10, name: "memcpy".into() },
        ]
    }

    const LOG: &str = "\
----------------
IN: k::floors::floor_send
0x0000000000001000:  push %rbp
0x0000000000001001:  mov %rsp,%rbp
0x0000000000001004:  jmp 0x1010

----------------
IN: k::floors::floor_send
0x0000000000001010:  inc %rax
0x0000000000001013:  jne 0x1010

IN: memcpy
0x0000000000003000:  rep movsb
Trace 1: 0x7f0000000000 [00000000/0000000000000500/00000000/ff000000] before
Trace 1: 0x7f0000000000 [00000000/0000000000001000/00000000/ff000000] k::floors::floor_send
Trace 1: 0x7f0000000100 [00000000/0000000000001010/00000000/ff000000] k::floors::floor_send
Trace 1: 0x7f0000000100 [00000000/0000000000001010/00000000/ff000000] k::floors::floor_send
Trace 2: 0x7f0000000200 [00000000/0000000000003000/00000000/ff000000] memcpy
Trace 2: 0x7f0000000300 [00000000/0000000000002040/00000000/ff000000] unknown
Trace 1: 0x7f0000000000 [00000000/0000000000001000/00000000/ff000000] k::floors::floor_send
";

    #[test]
    fn counts_tb_runs_times_lengths_per_phase_cpu_and_function() {
        let mut counter = Counter::new(functions(), &["k::floors::floor_send"]);
        for line in LOG.lines() {
            counter.feed(line);
        }
        assert_eq!(counter.phases(), ["start", "floor_send#1", "floor_send#2"]);
        let first = counter.counts("floor_send#1");
        // cpu 1: the 3-instruction entry TB once, the 2-instruction loop twice.
        assert_eq!(first[&1].instructions, 3 + 2 * 2);
        assert_eq!(first[&1].tb_runs, 3);
        assert_eq!(first[&1].by_function["k::floors::floor_send"], 7);
        assert_eq!(first[&1].tb_runs_by_page, BTreeMap::from([(0x1000, 3)]));
        // cpu 2: memcpy's one instruction; the TB at 0x2040 was never shown.
        assert_eq!(first[&2].instructions, 1);
        assert_eq!(first[&2].unknown_runs, 1);
        assert_eq!(counter.counts("start")[&1].unknown_runs, 1);
        assert_eq!(counter.counts("floor_send#2")[&1].instructions, 3);
    }

    #[test]
    fn a_marker_entry_cut_off_and_run_again_is_one_call() {
        let trace = |cpu: u32, pc: u64| format!("Trace {cpu}: 0x7f0000000000 [00000000/{pc:016x}/00000000/ff000000] x");
        let mut counter = Counter::new(functions(), &["k::floors::floor_send"]);
        counter.set_interrupt_entries(0x9000, 0xa000);
        for line in LOG.lines().take_while(|l| !l.starts_with("Trace")) {
            counter.feed(line);
        }
        let runs = [
            (1, 0x1000), // the entry, cut off by the round-robin kick
            (2, 0x3000), // the other vCPU's turn
            (1, 0x1000), // back: the same call
            (1, 0x1000), // cut off again, by an interrupt this time
            (1, 0x9020), // the interrupt's entry stub
            (1, 0x3000), // its handler
            (1, 0x1000), // back at the entry: still the same call
            (1, 0x1010), // the body
            (1, 0x3000), // the caller...
            (1, 0x1000), // ...calls again: a new phase
            (1, 0x1010),
            (1, 0x9020), // an interrupt in the body does not matter
            (1, 0x1010),
            (1, 0x3000),
            (1, 0x1000), // a call that follows an interrupt is a call
        ];
        for (cpu, pc) in runs {
            counter.feed(&trace(cpu, pc));
        }
        assert_eq!(counter.phases(), ["start", "floor_send#1", "floor_send#2", "floor_send#3"]);
        // cpu 1 in the first call: the entry three times, the stub, the handler, the entry, the body, the caller.
        assert_eq!(counter.counts("floor_send#1")[&1].tb_runs, 8);
    }

    #[test]
    fn addresses_outside_functions_are_named_by_address() {
        let counter = Counter::new(functions(), &[]);
        assert_eq!(counter.function_of(0, 0x2050), "k::floors::floor_receive");
        assert_eq!(counter.function_of(0, 0x2100), "0x2100");
        assert_eq!(counter.function_of(0, 0x10), "0x10");
    }

    #[test]
    fn user_addresses_are_named_by_the_program_on_that_cpu() {
        let mut counter = Counter::new(functions(), &[]);
        counter.add_cpu_functions(1, vec![Function { start: 0x10, size: 8, name: "client::send".into() }]);
        counter.add_cpu_functions(2, vec![Function { start: 0x10, size: 8, name: "echo::check".into() }]);
        assert_eq!(counter.function_of(1, 0x12), "client::send");
        assert_eq!(counter.function_of(2, 0x12), "echo::check");
        assert_eq!(counter.function_of(3, 0x12), "0x12");
        assert_eq!(counter.function_of(1, 0x2050), "k::floors::floor_receive");
    }

    #[test]
    fn a_turn_is_a_run_on_another_cpu_than_the_last_one() {
        let mut counter = Counter::new(functions(), &["k::floors::floor_send"]);
        let trace = |cpu: u32, pc: u64| format!("Trace {cpu}: 0x7f0000000000 [00000000/{pc:016x}/00000000/ff000000] x");
        // Before the first marker: one turn (1 -> 2), in no reported phase.
        // In floor_send#1: 1 1 2 2 1 0 -> turns at 2, 1, 0 (3), plus the
        // turn onto the marker's CPU (2 -> 1).
        for (cpu, pc) in
            [(1, 0x2000), (2, 0x2000), (1, 0x1000), (1, 0x1010), (2, 0x2050), (2, 0x2050), (1, 0x1010), (0, 0x2000)]
        {
            counter.feed(&trace(cpu, pc));
        }
        assert_eq!(counter.turns("floor_send#1"), 4);
        assert_eq!(counter.turns("floor_send#2"), 0);
        let text = report(&counter, &[ReportedPhase { phase: "floor_send#1", what: "floor", messages: 2 }], 5);
        assert!(text.contains("vCPU turns: 2.00/message"), "{text}");
    }

    #[test]
    fn report_divides_by_messages_and_skips_passers_by() {
        let mut counter = Counter::new(functions(), &["k::floors::floor_send"]);
        for line in LOG.lines() {
            counter.feed(line);
        }
        let text = report(&counter, &[ReportedPhase { phase: "floor_send#1", what: "floor", messages: 2 }], 5);
        assert!(text.contains("cpu 1: 3.5 instructions/message, 1.5 TB runs/message"), "{text}");
        assert!(text.contains("TB runs by 4 KiB page (1 % and more): 0x1000 100 %"), "{text}");
        assert!(!text.contains("cpu 2"), "{text}"); // 1 instruction for 2 messages
        let missing = report(&counter, &[ReportedPhase { phase: "mark#1", what: "mover", messages: 2 }], 5);
        assert!(missing.contains("not in the log"), "{missing}");
        let phases = [
            ReportedPhase { phase: "floor_send#1", what: "floor", messages: 2 },
            ReportedPhase { phase: "floor_send#2", what: "floor again", messages: 2 },
            ReportedPhase { phase: "mark#1", what: "mover", messages: 2 },
        ];
        assert_eq!(
            problems(&counter, &phases),
            ["floor (floor_send#1), cpu 2: 1 TB runs of unknown length", "mover (mark#1): not in the log",]
        );
        let many = [ReportedPhase { phase: "floor_send#2", what: "floor", messages: 4 }];
        assert_eq!(problems(&counter, &many), ["floor (floor_send#2): 3 instructions for 4 messages"]);
    }
}
