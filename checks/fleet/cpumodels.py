"""Which CPU features a migrating guest can depend on, and the named CPU models.

/proc/cpuinfo's "flags" line mixes CPUID features a guest can be given with
flags Linux made up for itself (``constant_tsc``, ``rep_good``), power and
thermal management (``hwp``, ``ida``), resource monitoring (``cat_l3``, ``cqm``)
and the virtualization extensions' own sub-features (``ept``, ``npt``). A guest
never sees the second kind, so hosts that differ only there migrate guests
fine: ``HOST_ONLY`` lists them (from Linux's ``cpufeatures.h``) and fleet checks
compare the rest, the guest-visible features. A flag not listed counts as
guest-visible: when in doubt, kvmprep warns.

``MODELS`` are libvirt's/QEMU's named x86 CPU models (libvirt's
``src/cpu_map/x86_*.xml``), each with the features of it that cpuinfo shows, in
cpuinfo's spelling (``pclmulqdq``, ``sse4_1``, ``tsc_deadline_timer``). Left out,
because cpuinfo does not show them reliably: the speculation-control bits
(``spec-ctrl`` is matched as ``ibrs``, ``ssbd`` as ``ssbd``; ``amd-ssbd``,
``amd-stibp`` and newer AMD bits are not matched), SVM/VMX sub-features,
``mpx`` (gone from cpuinfo since Linux 5.6) and ``monitor`` (KVM withholds it).
So a model found here is a strong hint, not proof: ``virsh hypervisor-cpu-baseline``
over every host's ``virsh domcapabilities`` is the authoritative answer.
"""

from __future__ import annotations

# Linux-defined (synthetic) flags, power/thermal/performance-monitoring and
# platform QoS flags, the virtualization sub-features (compared apart), and
# what a guest gets from its own topology or KVM withholds (ht, ss, MONITOR/MWAIT).
HOST_ONLY = frozenset("""
    cxmmx k6_mtrr cyrix_arr centaur_mcr k8 k7 p3 p4 constant_tsc up art arch_perfmon pebs bts
    syscall32 sysenter32 rep_good amd_lbr_v2 lfence_rdtsc acc_power nopl always xtopology
    tsc_reliable nonstop_tsc cpuid extd_apicid amd_dcm aperfmperf rapl nonstop_tsc_s3
    tsc_known_freq ring3mwait cpuid_fault cpb epb cat_l3 cat_l2 cdp_l3 cdp_l2 hw_pstate
    proc_feedback xcompacted pti kaiser kernel_ibrs rsb_vmexit intel_ppin amd_ppin ppin
    msr_spec_ctrl mba rsb_ctxsw perfmon_v2 use_ibpb use_ibrs_fw spec_store_bypass_disable
    ls_cfg_ssbd zen zen1 zen2 zen3 zen4 zen5 l1tf_pteinv ibrs_enhanced msr_ia32_feat_ctl
    retpoline retpoline_amd retpoline_lfence rethunk unret entry_ibpb ibpb_brtype
    split_lock_detect bus_lock_detect cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local rdt_a
    dtherm ida pln pts hwp hwp_notify hwp_act_window hwp_epp hwp_pkg_req hwp_highest_perf_change
    hfi dts acpi tm tm2 pbe est smx ds_cpl dtes64 dca xtpr pdcm sdbg ibs skinit wdt tce
    nodeid_msr perfctr_nb perfctr_llc bpext ptsc irperf overflow_recov succor smca mcommit
    xenpv vmmcall vmcall vmw_vmmcall pvunlock vcpupreempt tdx_guest tdx_host_platform
    tpr_shadow vnmi flexpriority ept vpid ept_ad vmx svm npt lbrv svm_lock nrip_save tsc_scale
    vmcb_clean flushbyasid decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif
    x2avic v_spec_ctrl sev sev_es sev_snp sme tme hypervisor ospke osxsave
    invpcid_single cpuid_maxleaf user_shstk sgx sgx_lc sgx1 sgx2
    amd_ssbd virt_ssbd amd_stibp amd_ibpb amd_ibrs ht ss monitor mwaitx
""".split())

# cpuinfo spellings of the base every x86-64 model shares
_BASE = frozenset("""
    apic clflush cmov cx16 cx8 de fpu fxsr lahf_lm lm mca mce mmx msr mtrr nx pae pat pge pni popcnt
    pse pse36 sep sse sse2 sse4_1 sse4_2 ssse3 syscall tsc
""".split())


def _f(*groups: str) -> frozenset:
    return frozenset(" ".join(groups).split())


_WESTMERE = _BASE | _f("aes pclmulqdq")
_SANDYBRIDGE = _WESTMERE | _f("avx rdtscp tsc_deadline_timer x2apic xsave")
_IVYBRIDGE = _SANDYBRIDGE | _f("erms f16c fsgsbase rdrand smep vme")
_HASWELL = _SANDYBRIDGE | _f("avx2 bmi1 bmi2 erms fma fsgsbase invpcid movbe pcid smep")
_BROADWELL = _HASWELL | _f("3dnowprefetch adx rdseed smap")
_SKYLAKE_CLIENT = _BROADWELL | _f("abm arat f16c rdrand ibrs vme xgetbv1 xsavec xsaveopt")
_SKYLAKE_SERVER = _SKYLAKE_CLIENT | _f("avx512bw avx512cd avx512dq avx512f avx512vl clwb pdpe1gb")
_CASCADELAKE = _SKYLAKE_SERVER | _f("avx512_vnni clflushopt ssbd")
_ICELAKE = _CASCADELAKE | _f("avx512_bitalg avx512_vbmi2 avx512_vpopcntdq avx512vbmi gfni intel_pt la57 pku",
                             "umip vaes vpclmulqdq wbnoinvd")
_EPYC = (_BASE | _f("3dnowprefetch abm adx aes arat avx avx2 bmi1 bmi2 clflushopt cr8_legacy f16c fma",
                    "fsgsbase fxsr_opt misalignsse mmxext movbe osvw pclmulqdq pdpe1gb rdrand",
                    "rdseed rdtscp sha_ni smap smep sse4a vme xgetbv1 xsave xsavec xsaveopt"))
_EPYC_ROME = _EPYC | _f("clwb clzero ibpb perfctr_core rdpid umip wbnoinvd xsaveerptr")
_EPYC_MILAN = _EPYC_ROME | _f("erms fsrm ibrs invpcid pcid pku xsaves")
_EPYC_GENOA = _EPYC_MILAN | _f("avx512_bf16 avx512_bitalg avx512_vbmi2 avx512_vnni avx512_vpopcntdq avx512bw",
                              "avx512cd avx512dq avx512f avx512ifma avx512vbmi avx512vl gfni la57 vaes",
                              "vpclmulqdq")

# (name, vendor, x86-64 level a guest gets, features, the variant with TSX
# (hle, rtm) where one exists). Oldest first per vendor; the -noTSX models are
# proposed because TSX is off on most hosts (microcode, TSX Async Abort).
MODELS: list[tuple[str, str, int, frozenset, str | None]] = [
    ("Nehalem", "intel", 2, _BASE, None),
    ("Westmere", "intel", 2, _WESTMERE, None),
    ("SandyBridge", "intel", 2, _SANDYBRIDGE, None),
    ("IvyBridge", "intel", 2, _IVYBRIDGE, None),
    ("Haswell-noTSX", "intel", 3, _HASWELL, "Haswell"),
    ("Broadwell-noTSX", "intel", 3, _BROADWELL, "Broadwell"),
    ("Skylake-Client-noTSX-IBRS", "intel", 3, _SKYLAKE_CLIENT, "Skylake-Client-IBRS"),
    ("Skylake-Server-noTSX-IBRS", "intel", 4, _SKYLAKE_SERVER, "Skylake-Server-IBRS"),
    ("Cascadelake-Server-noTSX", "intel", 4, _CASCADELAKE, "Cascadelake-Server"),
    ("Icelake-Server-noTSX", "intel", 4, _ICELAKE, "Icelake-Server"),
    ("EPYC", "amd", 3, _EPYC, None),
    ("EPYC-Rome", "amd", 3, _EPYC_ROME, None),
    ("EPYC-Milan", "amd", 3, _EPYC_MILAN, None),
    ("EPYC-Genoa", "amd", 4, _EPYC_GENOA, None),
]


def guest_features(flags: frozenset) -> frozenset:
    """The flags a guest CPU can be given (cpuinfo's flags less HOST_ONLY)."""
    return flags - HOST_ONLY


def best_model(vendor: str | None, features: frozenset) -> tuple[str, int, str | None] | None:
    """The newest named model of ``vendor`` whose features are all in
    ``features``: (name, x86-64 level, its TSX variant when the features have
    TSX too), or None when none of kvmprep's table fits."""
    best = None
    for name, model_vendor, level, need, tsx in MODELS:
        if model_vendor == vendor and need <= features:
            best = (name, level, tsx if tsx and {"hle", "rtm"} <= features else None)
    return best
