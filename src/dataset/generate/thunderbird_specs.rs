//! The hand-written Thunderbird message specs: the dominant head, the kernel boot sequence and
//! the long tail's base templates. Written by us from the facts in datasets.md §1 and §9 and
//! ordinary Linux/daemon message styles; nothing here is copied from the Loghub files.
//!
//! Shares are of ordinary lines (not alerts, not boot bursts) and follow §9: the gmetad
//! `data_thread()` line ~41 %, ntpd ~28.5 %, the ib_sm sweep ~9.3 %, the long gmetad data-source
//! list ~1.7 %. The tail takes the rest; its first specs rank highest, so the specs carrying
//! the benchmark query words (`kernel panic`, `disk I/O error`, `publickey`, …) sit early enough
//! in the list to be seen in every run of a few hundred thousand lines, yet stay rare.

use super::catalog::PidMode::{Absent, Fixed, Stable};
use super::catalog::Role::{Boot, Follow, Head, Tail};
use super::catalog::{Spec, spec};
use super::hosts::HostClass::{Admin1, Compute, Cron, Masked, Service, Sm1};

#[rustfmt::skip] // One spec per line reads as a table.
pub const HEAD: &[Spec] = &[
    spec(Head(0.41), Admin1, "/apps/x86_64/system/ganglia-3.0.1/sbin/gmetad", Fixed(1682), "data_thread() got not answer from any [{ds}] datasource", &[]),
    spec(Head(0.29), Compute, "ntpd", Stable, "synchronized to {ntp}, stratum 3", &[]),
    // The subnet manager's sweep is always this 3-line cycle.
    spec(Head(0.093), Sm1, "ib_sm.x", Stable, "[ib_sm_sweep.c:1831]: ********************** NEW SWEEP ********************", &[]),
    spec(Follow, Sm1, "ib_sm.x", Stable, "[ib_sm_sweep.c:1455]: No topology change", &[]),
    spec(Follow, Sm1, "ib_sm.x", Stable, "[ib_sm_sweep.c:1482]: No configuration change required", &[]),
    spec(Head(0.017), Admin1, "gmetad", Absent, "Warning: we failed to resolve data source name {hostlist}", &[]),
    // An hourly cron run: session, command, session end, on one host.
    spec(Head(0.038), Cron, "crond(pam_unix)", Stable, "session opened for user root by (uid=0)", &[]),
    spec(Follow, Cron, "crond", Stable, "(root) CMD (run-parts /etc/cron.hourly)", &[]),
    spec(Follow, Cron, "crond(pam_unix)", Stable, "session closed for user root", &[]),
];

/// A reboot of an admin node, in boot order. Components are the kernel subsystems, several with
/// the shapes that break naive parsers: spaces, a trailing space, parentheses with colons.
#[rustfmt::skip] // One spec per line reads as a table.
pub const BOOT: &[Spec] = &[
    boot("Kernel command line", "ro root=LABEL=/ console=tty0 console=ttyS1,115200n8 panic=30"),
    boot("ACPI", "RSDP (v002 DELL) @ 0x00000000000fd6f0"),
    boot("ACPI", "XSDT (v001 DELL PE_SC3 0x00000001 MSFT 0x0000000a) @ 0x000000007ffc0300"),
    boot("ACPI", "FADT (v003 DELL PE_SC3 0x00000001 MSFT 0x0000000a) @ 0x000000007ffc03c0"),
    boot("ACPI", "MADT (v001 DELL PE_SC3 0x00000001 MSFT 0x0000000a) @ 0x000000007ffc0480"),
    boot("ACPI", "Local APIC address 0xfee00000"),
    boot_words("ACPI", "LAPIC (acpi_id[0x0{0}] lapic_id[0x0{0}] enabled)", &[&["1", "2", "3", "4"]]),
    boot_words("ACPI", "IOAPIC (id[0x0{0}] address[0xfec{0}1000] gsi_base[{int:0:96}])", &[&["5", "6", "7"]]),
    boot("ACPI", "INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)"),
    boot("ACPI", "IRQ0 used by override."),
    boot("ACPI", "HPET id: 0x8086a201 base: 0xfed00000"),
    boot("Console", "colour VGA+ 80x25"),
    boot("time.c", "Using 14.318180 MHz HPET timer."),
    boot("time.c", "Detected {int:3190:3610}.{int:100:999} MHz processor."),
    boot("Memory", "{int:2000000:8000000}k/8388608k available (2036k kernel code, 0k reserved, 1210k data, 196k init)"),
    boot("SELinux", "Initializing."),
    boot("SELinux", "Starting in permissive mode"),
    boot("selinux_register_security", "Registering secondary module capability"),
    boot("Dentry cache hash table entries", "1048576 (order: 11, 8388608 bytes)"),
    boot("CPU", "Trace cache: 12K uops, L1 D cache: 16K"),
    boot("CPU", "L2 cache: 2048K"),
    boot("CPU", "Physical Processor ID: {int:0:1}"),
    boot("CPU0", "Intel(R) Xeon(TM) CPU 3.60GHz stepping 0{int:1:4}"),
    boot("checking TSC synchronization across 4 CPUs", "passed."),
    boot("NET", "Registered protocol family 16"),
    boot("PCI", "Using MMCONFIG at e0000000"),
    boot("ACPI", "Subsystem revision 20040816"),
    boot("ACPI", "Interpreter enabled"),
    boot("ACPI", "Using IOAPIC for interrupt routing"),
    boot("ACPI", "PCI Root Bridge [PCI0] (00:00)"),
    boot("PCI", "Probing PCI hardware (bus 00)"),
    boot("ACPI", "PCI Interrupt Routing Table [\\_SB_.PCI0._PRT]"),
    boot("ACPI", "Power Button (FF) [PWRF]"),
    boot_words("usbcore", "registered new driver {0}", &[&["usbfs", "hub", "hiddev", "usbhid"]]),
    boot("PCI", "Using ACPI for IRQ routing"),
    boot("PCI-DMA", "Using software bounce buffering for IO (SWIOTLB)"),
    boot("microcode", "CPU{int:0:3} updated from revision 0x{hex:2} to 0x{hex:2}, date = 09272005"),
    boot("audit(1131412345.120:0)", "initialized"),
    boot("audit", "initializing netlink socket (disabled)"),
    boot("VFS", "Disk quotas dquot_6.5.1"),
    boot("ksign", "Installing public key data"),
    boot("- User ID", "CentOS-4 (Kernel Module GPG key)"),
    boot("serio", "i8042 AUX port at 0x60,0x64 irq 12"),
    boot("serio", "i8042 KBD port at 0x60,0x64 irq 1"),
    boot("RAMDISK", "driver initialized: 16 RAM disks of 16384K size 1024 blocksize"),
    boot("ide", "Assuming 33MHz system bus speed for PIO modes; override with idebus=xx"),
    boot_words("ide{0}", "Wait for ready failed before probe !", &[&["0", "1", "2", "3"]]),
    boot("megaraid cmm", "2.20.2.6 (Release Date: Mon Mar 7 00:01:03 EST 2005)"),
    boot("megaraid", "fw version:[516A] bios version:[H430]"),
    boot("scsi0 ", "LSI Logic MegaRAID driver"),
    boot("scsi", "scanning scsi channel 0 [virtual] for logical drives"),
    boot("Vendor", "MegaRAID Model: LD 0 RAID1 69G Rev: 516A"),
    boot("Type", "Direct-Access ANSI SCSI revision: 02"),
    boot("SCSI device sda", "{int:100000000:200000000} 512-byte hdwr sectors ({int:51200:97656} MB)"),
    boot("sda", "asking for cache data failed"),
    boot("sda", "assuming drive cache: write through"),
    boot("sda", "sda1 sda2 sda3 sda4"),
    boot("md", "md driver 0.90.1 MAX_MD_DEVS=256, MD_SB_DISKS=27"),
    boot("md", "Autodetecting RAID arrays."),
    boot("md", "autorun ..."),
    boot("md", "... autorun DONE."),
    boot("NET", "Registered protocol family 2"),
    boot("IP", "routing cache hash table of 16384 buckets, 256Kbytes"),
    boot("TCP", "Hash tables configured (established 524288 bind 65536)"),
    boot("EXT3-fs", "mounted filesystem with ordered data mode."),
    boot("ioctl32(fdisk:515)", "Unknown cmd fd(3) cmd(80081272){{00}} arg(00000000) on /dev/sda"),
    boot_words("e1000", "eth{0}: e1000_probe: Intel(R) PRO/1000 Network Connection", &[&["0", "1"]]),
    boot("e1000", "eth0: e1000_watchdog: NIC Link is Up 1000 Mbps Full Duplex"),
    boot_words("divert", "allocating divert_blk for eth{0}", &[&["0", "1"]]),
    boot("ip_tables", "(C) 2000-2002 Netfilter core team"),
    boot("hw_random", "RNG not detected"),
    boot("floppy0", "no floppy controllers found"),
    boot("vesafb", "probe of vesafb0 failed with error -6"),
    boot("syslog-ng", "syslog-ng version 1.6.{int:5:9} starting"),
    boot("portmap", "portmap startup succeeded"),
    boot("nfslock", "rpc.statd startup succeeded"),
    boot("netfs", "Mounting NFS filesystems: succeeded"),
    spec(Boot, Admin1, "sshd", Stable, "Server listening on :: port 22.", &[]),
    spec(Boot, Admin1, "xinetd", Stable, "xinetd Version 2.3.13 started with libwrap loadavg options compiled in.", &[]),
    spec(Boot, Admin1, "xinetd", Stable, "Started working: {int:3:9} available services", &[]),
    boot("syslog-ng", "syslog-ng startup succeeded"),
    boot("gmetad", "gmetad startup succeeded"),
];

const fn boot(component: &'static str, text: &'static str) -> Spec {
    spec(Boot, Admin1, component, Absent, text, &[])
}

const fn boot_words(
    component: &'static str,
    text: &'static str,
    words: &'static [&'static [&'static str]],
) -> Spec {
    spec(Boot, Admin1, component, Absent, text, words)
}

const ETH: &[&str] = &["eth0", "eth1", "eth2", "ib0"];
const DISKS: &[&str] = &["sda", "sdb", "sdc", "hda"];
const NFS_SERVERS: &[&str] = &[
    "tbird-admin1",
    "tbird-fs1",
    "tbird-fs2",
    "nfs-home",
    "nfs-apps",
];
const DAEMONS: &[&str] = &[
    "xinetd",
    "sshd",
    "autofs",
    "nfslock",
    "crond",
    "ntpd",
    "snmpd",
    "sendmail",
    "dhcpd",
    "pbs_server",
    "rpc.idmapd",
    "iptables",
];
const IB_MODULES: &[&str] = &[
    "ib_mthca",
    "ib_ipoib",
    "ib_sdp",
    "ib_mad",
    "ib_sa",
    "ts_ib_core",
];
const GANGLIA_METRICS: &[&str] = &[
    "load_one",
    "cpu_idle",
    "mem_free",
    "bytes_in",
    "pkts_out",
    "disk_free",
    "proc_run",
    "swap_free",
    "cpu_user",
    "load_five",
];
const RRD_CLUSTERS: &[&str] = &[
    "Thunderbird_A",
    "Thunderbird_B",
    "Thunderbird_C",
    "Thunderbird_D",
    "__SummaryInfo__",
];

#[rustfmt::skip] // One spec per line reads as a table.
pub const TAIL: &[Spec] = &[
    spec(Tail, Admin1, "xinetd", Stable, "START: {0} pid={pid} from={ip}", &[&["tftp", "rsync", "auth", "time", "sgi_fam", "swat", "echo", "rexec"]]),
    spec(Tail, Admin1, "xinetd", Stable, "{0} {1}", &[&["removing", "readjusting", "adding"], &["discard", "daytime", "echo", "time", "chargen", "tftp", "rsync", "sgi_fam"]]),
    spec(Tail, Service, "in.tftpd", Stable, "tftp: client does not accept options", &[]),
    spec(Tail, Service, "dhcpd", Absent, "DHCPDISCOVER from {mac} via {0}: network {1}_net: no free leases", &[&["eth1", "eth0"], &["A", "B", "C", "D", "E"]]),
    spec(Tail, Compute, "ntpd", Stable, "kernel time sync {0} {1}", &[&["enabled", "disabled"], &["0001", "4001", "2001", "0041"]]),
    spec(Tail, Service, "crond", Stable, "(root) CMD (/projects/tbird/temps/get_temps {0}{1})", &[&["a", "b", "c", "d", "e"], &["1", "2", "3", "4"]]),
    spec(Tail, Admin1, "{0}", Stable, "{0} startup succeeded", &[DAEMONS]),
    spec(Tail, Admin1, "sshd", Stable, "Accepted publickey for {user} from {ip} port {port} {0}", &[&["ssh2", "ssh1"]]),
    spec(Tail, Service, "dhcpd", Absent, "{0} on {ip} to {mac} via {1}", &[&["DHCPOFFER", "DHCPACK", "DHCPNAK", "DHCPRELEASE"], &["eth1", "eth0"]]),
    spec(Tail, Masked, "sshd", Stable, "connection from \"{ip}\"", &[]),
    spec(Tail, Masked, "sshd2", Stable, "Now running on {user}'s privileges.", &[]),
    spec(Tail, Admin1, "snmpd", Stable, "Received SNMP packet(s) from {ip}", &[]),
    spec(Tail, Compute, "ntpd", Stable, "time reset +{frac} s", &[]),
    spec(Tail, Admin1, "ntpd", Stable, "{0} {ip} {1}", &[&["peer", "server"], &["unreachable", "reachable", "stratum change", "selected", "candidate"]]),
    spec(Tail, Compute, "sshd(pam_unix)", Stable, "session {0} for user {user}{1}", &[&["opened", "closed"], &[" by (uid=0)", ""]]),
    spec(Tail, Admin1, "postfix/postdrop", Stable, "warning: unable to look up public/pickup: No such file or directory", &[]),
    spec(Tail, Service, "sendmail", Stable, "unable to qualify my own domain name ({self}) -- using short name", &[]),
    spec(Tail, Service, "dhcpd", Absent, "DHCPREQUEST for {ip} ({ip}) from {mac} via {0}: {1}", &[&["eth1", "eth0"], &["unknown lease", "lease not found", "wrong network", "lease owned by another server"]]),
    spec(Tail, Admin1, "rsyncd", Stable, "rsync on {0} from {node} ({ip})", &[&["tbird/", "images/", "home/", "apps/", "projects/", "scratch/"]]),
    spec(Tail, Admin1, "/apps/x86_64/system/ganglia-3.0.1/sbin/gmetad", Fixed(1682), "RRD_update (/var/lib/ganglia/rrds/{0}/{node}/{1}.rrd): illegal attempt to update using time {epoch} when last update time is {epoch} (minimum one second step)", &[RRD_CLUSTERS, GANGLIA_METRICS]),
    spec(Tail, Service, "sendmail", Stable, "{hex:14}: to=root, ctladdr=root (0/0), delay=00:00:0{int:0:9}, xdelay=00:00:00, mailer={0}, pri={int:30000:99999}, relay=[127.0.0.1] [127.0.0.1], dsn=4.0.0, stat=Deferred: Connection refused by [127.0.0.1]", &[&["relay", "local", "esmtp"]]),
    spec(Tail, Admin1, "syslog-ng", Stable, "Cannot open file {0} for writing (No such file or directory)", &[&["/dev/logsurfer", "/var/log/ib/sm.log", "/var/log/pbs/server.log", "/dev/console.pipe"]]),
    spec(Tail, Admin1, "sshd", Stable, "error: Bind to port 22 on {0} failed: Address already in use.", &[&["0.0.0.0", "::", "10.100.0.1"]]),
    spec(Tail, Service, "sendmail", Stable, "{hex:14}: from=root, size={int:300:9000}, class=0, nrcpts=1, msgid=<{hex:12}.{0}@{self}>, relay=root@localhost", &[&["ca", "ll", "sr"]]),
    spec(Tail, Admin1, "gmetad", Absent, "Warning: we failed to resolve trusted host name {node}", &[]),
    spec(Tail, Service, "sendmail", Stable, "My unqualified host name ({self}) unknown; sleeping for retry", &[]),
    spec(Tail, Admin1, "smartd", Stable, "Device: /dev/{0}, Temperature changed {int:1:6} Celsius to {int:24:45} Celsius since last report", &[DISKS]),
    spec(Tail, Admin1, "sshd", Stable, "Timeout, client not responding.", &[]),
    spec(Tail, Admin1, "kernel", Absent, "time.c: Lost {int:2:40} CPU ticks on CPU{0}, {1}", &[&["0", "1", "2", "3"], &["timer interrupt delayed", "checking if CPU frequency changed", "SMI handler too slow"]]),
    spec(Tail, Admin1, "kernel", Absent, "EXT3 FS on {0}, internal journal", &[&["sda1", "sda2", "sda3", "sda5", "md0", "md1"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: link up, {1}Mbps, full-duplex, lpa 0x{hex:4}", &[ETH, &["100", "1000"]]),
    spec(Tail, Admin1, "postfix/smtpd", Stable, "connect from {0}[{ip}]", &[&["localhost", "tbird-admin1", "unknown", "tbird-login1"]]),
    spec(Tail, Admin1, "mountd", Stable, "authenticated {0} request from {node}:{int:600:1023} for {1} ({1})", &[&["mount", "unmount"], &["/home", "/apps", "/projects", "/scratch", "/usr/local"]]),
    spec(Tail, Admin1, "pbs_server", Stable, "Job;{int:10000:99999}.tbird-admin1;{0}", &[&["Job Queued at request of {user}@tbird-login1, owner = {user}@tbird-login1", "Job Run at request of Scheduler@tbird-admin1", "Exit_status=0 resources_used.cput=00:00:{int:10:59}", "Job deleted at request of {user}@tbird-login1", "dequeuing from batch, state COMPLETE"]]),
    spec(Tail, Compute, "pbs_mom", Stable, "Job;{int:10000:99999}.tbird-admin1;{0}", &[&["Started, pid = {pid}", "task 1 terminated", "kill_job", "Obit sent", "scan_for_terminated: job exited"]]),
    spec(Tail, Sm1, "ib_sm.x", Stable, "[ib_sm_{0}.c:{int:100:3000}]: {1}", &[&["discover", "assign", "lft", "mcast", "sweep"], &["Topology change detected, starting heavy sweep", "port state change on switch {hex:16}", "Configuring switch {hex:16}", "Node {hex:16} is not responding"]]),
    spec(Tail, Admin1, "named", Stable, "lame server resolving '{0}' (in '{1}'?): {ip}#53", &[&["www.sandia.gov", "mirror.centos.org", "ntp.llnl.gov", "rhn.redhat.com"], &["sandia.gov", "centos.org", "llnl.gov", "redhat.com"]]),
    spec(Tail, Admin1, "sshd", Stable, "Failed password for {0}{user} from {ip} port {port} ssh2", &[&["", "invalid user "]]),
    spec(Tail, Admin1, "Server Administrator", Absent, "Instrumentation Service EventID: 1403 Memory device status is non-critical Memory device location: DIMM{int:1:8}_{0} Possible memory module event cause: correctable ECC memory error {1}", &[&["A", "B"], &["logged", "rate exceeded", "threshold reached"]]),
    spec(Tail, Admin1, "rsyncd", Stable, "rsync error: timeout in data send/receive (code 30) at io.c({int:100:200})", &[]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: {2}network interface down, {1}", &[ETH, &["link lost", "carrier lost", "administratively disabled", "watchdog reset"], &["", "warning: "]]),
    spec(Tail, Admin1, "kernel", Absent, "nfs: server {0} {1}", &[NFS_SERVERS, &["not responding, still trying", "OK", "not responding, timed out"]]),
    spec(Tail, Admin1, "postfix/smtp", Stable, "{hex:10}: to=<{user}@{0}>, relay=none, delay={int:0:900}, status=deferred (connect to {0}[{ip}]: Connection timed out)", &[&["sandia.gov", "ca.sandia.gov", "mail.sandia.gov", "llnl.gov"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: disk I/O error, dev {1}, sector {int:1024:143000000}", &[&["end_request", "Buffer I/O error", "raid1"], DISKS]),
    spec(Tail, Admin1, "kernel", Absent, "SCSI error : <0 0 {0} 0> return code = 0x{hex:8}", &[&["0", "1", "2", "6"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: memory allocation failed for {1}", &[IB_MODULES, &["QP table", "CQ buffer", "rx ring", "MR table", "EQ", "send queue"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: page allocation failure. order:{1}, mode:0x{2}", &[&["swapper", "ib_ipoib", "ksoftirqd/0", "nfsd", "kswapd0"], &["0", "1", "2", "3"], &["20", "d0", "50"]]),
    spec(Tail, Admin1, "logrotate", Absent, "ALERT exited abnormally with [{0}]", &[&["1", "2"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: {1} {2} on port {int:1:2}", &[IB_MODULES, &["queue", "link", "path", "lid", "pkey table"], &["reset", "timeout", "reconfigured", "renegotiated", "updated", "stalled", "flushed"]]),
    spec(Tail, Compute, "kernel", Absent, "{0}: multicast join failed for {hex:8}:{hex:4}, status {1}", &[&["ib0", "ib1"], &["-11", "-22", "-110", "-5"]]),
    spec(Tail, Admin1, "{0}", Stable, "Stopping {0}: {1}", &[&["gmetad", "xinetd", "sshd", "portmap", "nfslock", "snmpd", "sendmail"], &["succeeded", "failed"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: {1} error detected on {2}, corrected", &[&["EDAC MC0", "EDAC MC1", "e7520_edac"], &["CE", "UE", "parity"], &["page 0x{hex:5}", "row {int:0:7}", "channel {int:0:1}"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: {1} {2}", &[&["bonding", "e1000", "tg3", "ib_ipoib", "bnx2"], &["eth0", "eth1", "eth2", "bond0", "ib0"], &["tx timeout", "reset adapter", "enslaving as a backup interface", "making interface the new active one", "duplex mismatch"]]),
    spec(Tail, Admin1, "gmond", Stable, "{0} metric {1} from {node}", &[&["dropping", "late", "bad checksum on", "duplicate"], GANGLIA_METRICS]),
    spec(Tail, Admin1, "{0}", Stable, "{1} reload {2}", &[&["xinetd", "syslog-ng", "named", "dhcpd", "snmpd"], &["configuration", "zone", "lease file"], &["succeeded", "failed", "skipped"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0} {1}: {2}", &[&["usb", "hub", "input"], &["1-1", "2-1", "1-2", "2-2"], &["new full speed USB device using uhci_hcd and address {int:2:9}", "USB disconnect, address {int:2:9}", "device descriptor read/64, error -71"]]),
    spec(Tail, Admin1, "{0}", Stable, "warning: {1} {2}", &[&["postfix/pickup", "postfix/cleanup", "postfix/local", "postfix/qmgr"], &["queue file", "alias database", "map file"], &["is older than source file", "size limit exceeded", "has wrong owner", "corrupted"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: unable to {1} {2}", &[&["md0", "md1", "sda", "sdb", "raid1"], &["read", "write", "sync", "flush"], &["superblock", "bitmap", "journal", "inode table"]]),
    spec(Tail, Service, "in.tftpd", Stable, "RRQ from {ip} filename {0}{1}", &[&["pxelinux.cfg/", "images/", "boot/"], &["default", "vmlinuz-2.6.9-22.ELsmp", "initrd-2.6.9-22.ELsmp.img", "01-00-11-43-{hex:2}-{hex:2}-{hex:2}", "C0A8"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}: Out of Memory: Killed process {pid} ({1}).", &[&["oom-killer", "VM"], &["gmetad", "java", "python", "perl", "mpirun", "a.out", "sshd", "xinetd"]]),
    spec(Tail, Admin1, "gmetad", Absent, "{0} for data source [{ds}]: {1}", &[&["Polling failed", "Slow response", "Reconnecting", "Timed out"], &["connection refused", "no route to host", "read error", "empty response"]]),
    spec(Tail, Compute, "kernel", Absent, "ib_mthca {hex:4}:{hex:2}:00.0: {0} {1}", &[&["HCA", "port 1", "port 2", "EQ", "CQ"], &["firmware update required", "event queue overflow", "link state changed", "reset requested", "recovered", "responded to ping"]]),
    spec(Tail, Admin1, "kernel", Absent, "{0}[{pid}]: segfault at {hex:16} rip {hex:16} rsp {hex:16} error {1}", &[&["gmetad", "gmond", "a.out", "python", "perl", "java", "pbs_mom", "mpirun"], &["4", "6", "14", "15"]]),
    spec(Tail, Compute, "kernel", Absent, "Kernel panic - not syncing: {0}", &[&["Fatal exception in interrupt", "Attempted to kill init!"]]),
];
