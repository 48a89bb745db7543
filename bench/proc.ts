// CPU time and memory of a process, read from /proc (Linux).
//
// CPU: /proc/<pid>/stat utime+stime count every thread of the process (GC
// helpers and the libuv pool included) but only in clock ticks of 10 ms. For
// short windows we add up /proc/<pid>/task/*/schedstat instead, the same
// quantity (time on CPU of every thread) in nanoseconds. A thread that exits
// inside a window takes its schedstat with it, while stat keeps it; when the
// two disagree by more than rounding, stat wins.
import { readdirSync, readFileSync } from 'node:fs'

// /proc reports clock_t in USER_HZ, which Linux fixes at 100 whatever the kernel's HZ
const TICK_US = 10_000

export interface CpuSample {
  /** utime+stime of /proc/<pid>/stat, µs (10 ms steps) */
  statUs: number
  /** sum of schedstat run time over the threads, µs; null when schedstat is not available */
  schedUs: number | null
  /** the main thread alone (the event loop), µs; null without schedstat */
  mainUs: number | null
}

function schedstatUs (path: string): number | null {
  try {
    const ns = Number(readFileSync(path, 'utf8').split(' ')[0])
    return Number.isFinite(ns) ? ns / 1000 : null
  } catch {
    return null
  }
}

export function readCpu (pid: number): CpuSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after "(comm)": state is field 3, utime 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const statUs = (Number(rest[11]) + Number(rest[12])) * TICK_US
  let schedUs: number | null = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const us = schedstatUs(`/proc/${pid}/task/${tid}/schedstat`)
      if (us === null) {
        schedUs = null
        break
      }
      schedUs += us
    }
  } catch {
    schedUs = null
  }
  return { statUs, schedUs, mainUs: schedstatUs(`/proc/${pid}/task/${pid}/schedstat`) }
}

export interface CpuDelta {
  /** CPU time of the whole process in the window, µs */
  us: number
  /** of which the main thread, µs (equal to `us` when schedstat is missing) */
  mainUs: number
  source: 'schedstat' | 'stat'
}

export function cpuDelta (a: CpuSample, b: CpuSample): CpuDelta {
  const stat = b.statUs - a.statUs
  const main = a.mainUs !== null && b.mainUs !== null ? b.mainUs - a.mainUs : null
  if (a.schedUs === null || b.schedUs === null) return { us: stat, mainUs: main ?? stat, source: 'stat' }
  const sched = b.schedUs - a.schedUs
  // stat may round each of utime and stime by a tick; beyond that a thread has exited
  if (stat - sched > 3 * TICK_US + 0.02 * stat) return { us: stat, mainUs: main ?? stat, source: 'stat' }
  return { us: sched, mainUs: main ?? sched, source: 'schedstat' }
}

/**
 * Write-type system calls made by the process so far (syscw of /proc/<pid>/io:
 * write, writev and the like — what Node's TCP sockets use), or null where
 * /proc/<pid>/io cannot be read.
 * Per delivery it shows how much the server batched.
 */
export function readWriteCalls (pid: number): number | null {
  try {
    const m = /^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))
    return m === null ? null : Number(m[1])
  } catch {
    return null
  }
}

/** VmRSS of /proc/<pid>/status, KB. */
export function readRssKb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/**
 * CPU time of the whole machine, all CPUs, µs: user, system, irq and steal, from /proc/stat.
 * Softirq is left out: loopback TCP of the benchmark itself is processed there
 * and is not charged to either process.
 */
export function readMachineBusyUs (): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  return (f[0] + f[1] + f[2] + f[5] + f[7]) * TICK_US
}

/** Softirq time of the whole machine, µs: loopback TCP processing that no process is charged for. */
export function readSoftirqUs (): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number)
  return f[6] * TICK_US
}
