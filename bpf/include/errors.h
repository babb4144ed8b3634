/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * errors.h: reasons internal helpers return (negative), turned into a
 * verdict and counted exactly once, at the entry point's single exit.
 * sluice_lookup hands lb_decide()'s outcome to user space as it is
 * (struct lookup_result's rc): the addon exports those it can be.
 */
#ifndef SLUICE_ERRORS_H
#define SLUICE_ERRORS_H

#define SLUICE_ERR_TRUNCATED -1  /* header runs past the end of the packet */
#define SLUICE_ERR_MALFORMED -2  /* a header field is invalid */
#define SLUICE_ERR_FRAGMENT -3   /* IP fragment to a VIP */
#define SLUICE_ERR_NO_SERVICE -4 /* VIP, but no service on this port/proto */
#define SLUICE_ERR_NO_BACKEND -5 /* service without a usable backend */
#define SLUICE_ERR_CT_FULL -6    /* conntrack update failed */
#define SLUICE_ERR_REWRITE -7    /* a checksum/store helper failed */
#define SLUICE_ERR_RATE_LIMITED -8 /* an answer (RST, ICMP) over the rate limit */
#define SLUICE_ERR_CT_CLASH -9   /* a new flow whose reply tuple another live flow holds */

/* Non-negative outcomes of the core. */
#define SLUICE_PASS 0      /* not ours: hand to the stack untouched */
#define SLUICE_NAT_FWD 1   /* DNAT done, forward towards the backend */
#define SLUICE_NAT_REPLY 2 /* reverse NAT done, forward towards the client */
#define SLUICE_REJECT_RST 3  /* no backend: the packet became a TCP RST to its sender */
#define SLUICE_REJECT_ICMP 4 /* no backend: the packet became an ICMP port unreachable */
#define SLUICE_NAT_FRAG 5    /* a later fragment: its address rewritten as its first's (frag.h) */
#define SLUICE_NAT_ICMP 6    /* an ICMP error about a flow, translated through the NAT (icmp_nat.h) */
#define SLUICE_FRAG_NEEDED 7 /* a DF packet over the next hop's MTU became ICMP fragmentation needed */

#endif /* SLUICE_ERRORS_H */
