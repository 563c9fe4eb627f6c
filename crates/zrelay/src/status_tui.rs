//! `zrelay status` on a terminal: a live view built on ratatui. It polls the
//! daemon's control socket and shows the jobs, and for the selected job each
//! filesystem's step with a progress bar (bytes done/expected, rate, ETA),
//! the last error with its next retry, the snapshotter and pruner, and the
//! zfs commands running now. Keys: ↑/↓ (or k/j) select a job, q or Esc quits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use zrelay_daemon::status::{DaemonStatus, JobStatus};
use zrelay_replication::{FsReport, Report};

use crate::progress::human_bytes;

/// Bytes and time of the last sample, per job and filesystem, for rates.
#[derive(Default)]
struct Rates {
    last: HashMap<(String, String), (u64, Instant)>,
    rate: HashMap<(String, String), f64>,
}

impl Rates {
    fn update(&mut self, st: &DaemonStatus) {
        let now = Instant::now();
        for j in &st.jobs {
            let Some(r) = &j.current else { continue };
            for f in &r.filesystems {
                let key = (j.name.clone(), f.fs.clone());
                if let Some((b, t)) = self.last.get(&key) {
                    let dt = now.duration_since(*t).as_secs_f64();
                    if dt > 0.0 && f.bytes_replicated >= *b {
                        let inst = (f.bytes_replicated - b) as f64 / dt;
                        let old = self.rate.get(&key).copied().unwrap_or(inst);
                        self.rate.insert(key.clone(), 0.5 * old + 0.5 * inst);
                    }
                }
                self.last.insert(key, (f.bytes_replicated, now));
            }
        }
    }
}

struct App {
    sock: PathBuf,
    job: Option<String>,
    status: Option<DaemonStatus>,
    error: Option<String>,
    selected: ListState,
    rates: Rates,
    updated: SystemTime,
}

/// Run the UI until the user quits.
pub async fn run(sock: PathBuf, job: Option<String>, every: Duration) -> Result<()> {
    let mut terminal = ratatui::init();
    let mut app = App {
        sock,
        job,
        status: None,
        error: None,
        selected: ListState::default().with_selected(Some(0)),
        rates: Rates::default(),
        updated: SystemTime::now(),
    };
    let result = async {
        loop {
            app.refresh().await;
            terminal.draw(|f| app.draw(f))?;
            let deadline = Instant::now() + every;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                if !event::poll(left)? {
                    break;
                }
                if let Event::Key(k) = event::read()? {
                    if k.kind != KeyEventKind::Press {
                        continue;
                    }
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Down | KeyCode::Char('j') => app.select(1),
                        KeyCode::Up | KeyCode::Char('k') => app.select(-1),
                        _ => {}
                    }
                    terminal.draw(|f| app.draw(f))?;
                }
            }
        }
    }
    .await;
    ratatui::restore();
    result
}

impl App {
    async fn refresh(&mut self) {
        match crate::daemon::fetch_status(&self.sock, self.job.as_deref()).await {
            Ok(st) => {
                self.rates.update(&st);
                self.status = Some(st);
                self.error = None;
                self.updated = SystemTime::now();
            }
            Err(e) => self.error = Some(format!("{e:#}")),
        }
    }

    fn select(&mut self, delta: i32) {
        let n = self.status.as_ref().map_or(0, |s| s.jobs.len());
        if n == 0 {
            return;
        }
        let cur = self.selected.selected().unwrap_or(0) as i32;
        self.selected
            .select(Some((cur + delta).rem_euclid(n as i32) as usize));
    }

    fn draw(&mut self, f: &mut Frame) {
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(8),
            Constraint::Length(6),
        ])
        .areas(f.area());
        let version = self.status.as_ref().map_or("?", |s| s.version.as_str());
        let ago = self.updated.elapsed().map(|d| d.as_secs()).unwrap_or(0);
        let mut title = format!(
            " zrelay {version} · {} · updated {ago}s ago · ↑↓ job · q quit",
            self.sock.display()
        );
        if let Some(e) = &self.error {
            title = format!(" cannot reach the daemon: {e}");
        }
        f.render_widget(
            Paragraph::new(title).style(Style::new().add_modifier(Modifier::REVERSED)),
            head,
        );
        let [left, right] =
            Layout::horizontal([Constraint::Length(30), Constraint::Min(40)]).areas(body);
        let jobs: Vec<JobStatus> = self
            .status
            .as_ref()
            .map(|s| s.jobs.clone())
            .unwrap_or_default();
        let items: Vec<ListItem> = jobs
            .iter()
            .map(|j| ListItem::new(format!("{} ({}) {}", j.name, j.kind, state(j))))
            .collect();
        let list = List::new(items)
            .block(Block::default().borders(Borders::ALL).title(" jobs "))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        f.render_stateful_widget(list, left, &mut self.selected);
        if let Some(j) = jobs.get(self.selected.selected().unwrap_or(0)) {
            self.draw_job(f, right, j);
        }
        let running: Vec<Line> = self
            .status
            .as_ref()
            .map(|s| {
                let now = zrelay_replication::report::unix(SystemTime::now());
                s.zfs_running
                    .iter()
                    .map(|c| {
                        Line::from(format!(
                            "{:>4}s {}",
                            now.saturating_sub(c.started_at),
                            c.cmdline
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        f.render_widget(
            Paragraph::new(running).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" running zfs commands "),
            ),
            foot,
        );
    }

    fn draw_job(&self, f: &mut Frame, area: Rect, j: &JobStatus) {
        let mut info = vec![Line::from(format!(
            "{} · {} · {} invocation(s) · {} connection(s)",
            j.endpoint,
            state(j),
            j.invocations,
            j.connections
        ))];
        if let Some(sn) = &j.snapshotter {
            let next = sn
                .next_run
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                .map(|d| format!(", next in {}s", d.as_secs()))
                .unwrap_or_default();
            let last = sn
                .last_report
                .as_ref()
                .map(|r| format!(", last @{}", r.name))
                .unwrap_or_default();
            info.push(Line::from(format!(
                "snapshotter ({}): {:?}{next}{last}",
                sn.kind, sn.state
            )));
        }
        for p in &j.last_pruning {
            let destroyed: usize = p.filesystems.iter().map(|f| f.destroyed.len()).sum();
            let kept: usize = p.filesystems.iter().map(|f| f.kept.len()).sum();
            info.push(Line::from(format!(
                "pruning {:?}: {destroyed} destroyed, {kept} kept{}",
                p.side,
                p.error
                    .as_ref()
                    .map(|e| format!(", error: {e}"))
                    .unwrap_or_default()
            )));
        }
        if let Some(e) = &j.last_error {
            info.push(Line::from(Span::styled(
                format!("last error: {e}"),
                Style::new().fg(Color::Red),
            )));
        }
        if j.restarts > 0 || j.restart_at.is_some() {
            let next = j
                .restart_at
                .map(|at| {
                    let now = zrelay_replication::report::unix(SystemTime::now());
                    format!(", next restart in {}s", at.saturating_sub(now))
                })
                .unwrap_or_default();
            info.push(Line::from(format!(
                "restarted {} time(s) after failures{next}",
                j.restarts
            )));
        }
        let now = zrelay_replication::report::unix(SystemTime::now());
        for t in &j.targets {
            let line = crate::progress::target_line(t, now);
            info.push(match t.health.health {
                zrelay_daemon::jobs::health::Health::Unhealthy => {
                    Line::from(Span::styled(line, Style::new().fg(Color::Red)))
                }
                _ if t.health.backoff_until.is_some() => {
                    Line::from(Span::styled(line, Style::new().fg(Color::Yellow)))
                }
                _ => Line::from(line),
            });
        }
        let report: Option<&Report> = j.current.as_ref().or(j.last.as_ref());
        let fss: Vec<&FsReport> = report
            .map(|r| r.filesystems.iter().collect())
            .unwrap_or_default();
        let head = info.len() as u16 + 2;
        let rows = Layout::vertical(
            std::iter::once(Constraint::Length(head))
                .chain(fss.iter().map(|_| Constraint::Length(2)))
                .chain(std::iter::once(Constraint::Min(0))),
        )
        .split(area);
        let title = match (&j.current, report) {
            (Some(r), _) => format!(
                " {} · running, attempt {} ({}) ",
                j.name,
                r.attempt,
                r.state.as_str()
            ),
            (None, Some(r)) => format!(" {} · last run {} ", j.name, r.state.as_str()),
            _ => format!(" {} ", j.name),
        };
        f.render_widget(
            Paragraph::new(info)
                .wrap(Wrap { trim: true })
                .block(Block::default().borders(Borders::ALL).title(title)),
            rows[0],
        );
        for (i, fs) in fss.iter().enumerate() {
            let rate = self
                .rates
                .rate
                .get(&(j.name.clone(), fs.fs.clone()))
                .copied()
                .filter(|_| j.current.is_some());
            self.draw_fs(f, rows[i + 1], fs, rate);
        }
    }

    fn draw_fs(&self, f: &mut Frame, area: Rect, fs: &FsReport, rate: Option<f64>) {
        let [label, bar] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
        let step = fs
            .current_step
            .as_ref()
            .map(|s| match &s.from {
                Some(from) => format!("{from} => {}", s.to),
                None => format!("full {}", s.to),
            })
            .unwrap_or_default();
        let mut text = format!(
            "{} [{}] {step} {}/{} steps",
            fs.fs,
            fs.state.as_str(),
            fs.steps_done,
            fs.steps_total
        );
        if let Some(e) = &fs.last_error {
            let retry = fs
                .next_retry_at
                .map(|t| {
                    let now = zrelay_replication::report::unix(SystemTime::now());
                    format!(" (retry in {}s)", t.saturating_sub(now))
                })
                .unwrap_or_default();
            text.push_str(&format!(" · error: {e}{retry}"));
        }
        f.render_widget(Paragraph::new(text), label);
        let expected = fs.bytes_expected.max(1);
        let ratio = (fs.bytes_replicated as f64 / expected as f64).clamp(0.0, 1.0);
        let speed = rate
            .map(|r| {
                let left = fs.bytes_expected.saturating_sub(fs.bytes_replicated) as f64;
                let eta = if r > 1.0 {
                    format!(", ETA {}s", (left / r).ceil() as u64)
                } else {
                    String::new()
                };
                format!(" · {}/s{eta}", human_bytes(r as u64))
            })
            .unwrap_or_default();
        let label = format!(
            "{} / {}{speed}",
            human_bytes(fs.bytes_replicated),
            human_bytes(fs.bytes_expected)
        );
        f.render_widget(
            Gauge::default()
                .gauge_style(Style::new().fg(Color::Green))
                .ratio(ratio)
                .label(label),
            bar,
        );
    }
}

fn state(j: &JobStatus) -> String {
    serde_json::to_value(j.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
