/* The floor of the DNS path (benches/dns_compare.sh): what reading the capture costs with nothing but the minimum
 * any DNS-answer counter must do. libpcap reads the file and applies the same filter; for each frame the Ethernet,
 * IPv4 and UDP/TCP headers are skipped by their lengths. Then, in one of two orders:
 * - every response (`floor FILE`, the floor the budget was set against): the DNS id and the question name
 *   are hashed (FNV-1a), the copy is dropped through an open-addressing table keyed by (client, port, hash)
 *   without expiry, and responses with the QR bit, RCODE 0 and an answer count are counted;
 * - one node (`floor FILE CLUSTER_TSV NODE`, the order that does least): responses that are not answers are
 *   dropped on the header, answers to pods on other nodes (an open-addressing set from cluster.tsv) on the client
 *   address, and only the rest are hashed and de-duplicated.
 * No name text, no answer records, no resolution: not a usable exporter, a lower bound for one.
 *
 * Build: cc -O2 -o floor floor.c -lpcap
 * Run: ./floor cluster.pcap [cluster.tsv NODE]  (prints "responses N answers M": every response frame read, and
 * the distinct answers counted) */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (1u << 16)
#define OTHERS (1u << 14)

static uint64_t table[SLOTS];
static uint32_t others[OTHERS]; /* IPv4 addresses of pods on other nodes; 0 is empty */

static uint32_t slot_of(uint32_t ip) { return (ip * 0x9E3779B1u) >> 18; }

static void add_other(uint32_t ip) {
    for (uint32_t i = slot_of(ip);; i = (i + 1) & (OTHERS - 1)) {
        if (others[i] == ip) return;
        if (others[i] == 0) { others[i] = ip; return; }
    }
}

static int on_other_node(uint32_t ip) {
    for (uint32_t i = slot_of(ip);; i = (i + 1) & (OTHERS - 1)) {
        if (others[i] == ip) return 1;
        if (others[i] == 0) return 0;
    }
}

static int first_sighting(uint64_t key) {
    key |= 1;
    for (uint32_t i = (uint32_t)(key >> 40) & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        if (table[i] == key) return 0;
        if (table[i] == 0) { table[i] = key; return 1; }
    }
}

/* Reads "pod <ip> <node> ..." lines; every pod whose node is not `node` goes into the set. */
static int load_others(const char *path, const char *node) {
    FILE *f = fopen(path, "r");
    char line[512], kind[32], ip[64], on[128];
    unsigned a, b, c, d, count = 0;
    if (!f) { perror(path); return -1; }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%31s %63s %127s", kind, ip, on) != 3 || strcmp(kind, "pod") != 0) continue;
        if (strcmp(on, node) == 0 || sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d) != 4) continue;
        if (++count > OTHERS / 2) { fprintf(stderr, "%s: more than %u pods\n", path, OTHERS / 2); return -1; }
        add_other(a << 24 | b << 16 | c << 8 | d);
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    struct bpf_program program;
    struct pcap_pkthdr *header;
    const u_char *data;
    uint64_t responses = 0, answers = 0, seen = 0;
    if (argc != 2 && argc != 4) { fprintf(stderr, "usage: floor FILE [CLUSTER_TSV NODE]\n"); return 2; }
    int node = argc == 4;
    if (node && load_others(argv[2], argv[3])) return 2;
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) { fprintf(stderr, "%s\n", err); return 2; }
    if (pcap_compile(p, &program, "udp src port 53 or tcp src port 53", 1, PCAP_NETMASK_UNKNOWN) ||
        pcap_setfilter(p, &program)) { fprintf(stderr, "%s\n", pcap_geterr(p)); return 2; }
    while (pcap_next_ex(p, &header, &data) == 1) {
        uint32_t len = header->caplen, at = 14;
        if (len < at + 20 || data[12] != 0x08 || data[13] != 0x00) continue;
        const u_char *ip = data + at;
        uint32_t ihl = (ip[0] & 0x0F) * 4, proto = ip[9];
        at += ihl;
        if (ihl < 20 || len < at + 4) continue;
        uint32_t client = (uint32_t)ip[16] << 24 | ip[17] << 16 | ip[18] << 8 | ip[19];
        uint16_t port = (uint16_t)(data[at + 2] << 8 | data[at + 3]);
        if (proto == 17) at += 8;
        else if (proto == 6 && len >= at + 13) at += (data[at + 12] >> 4) * 4 + 2;
        else continue;
        if (len < at + 12) continue;
        const u_char *dns = data + at;
        responses++;
        int answer = (dns[2] & 0x80) && (dns[3] & 0x0F) == 0 && (dns[6] | dns[7]);
        if (node && (!answer || on_other_node(client))) continue;
        uint64_t hash = 0xcbf29ce484222325ull;
        for (uint32_t i = 0; i < 2; i++) hash = (hash ^ dns[i]) * 0x100000001b3ull;
        for (uint32_t i = 12; at + i < len && dns[i] != 0; i++) hash = (hash ^ (dns[i] | 0x20)) * 0x100000001b3ull;
        uint64_t key = hash ^ ((uint64_t)client << 16 | port) * 0x9E3779B97F4A7C15ull;
        if (++seen % (SLOTS / 2) == 0) memset(table, 0, sizeof table); /* no expiry: the table is cleared */
        if (first_sighting(key) && answer) answers++;
    }
    printf("responses %llu answers %llu\n", (unsigned long long)responses, (unsigned long long)answers);
    pcap_close(p);
    return 0;
}
