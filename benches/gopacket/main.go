// The DNS path of network-mapper written with gopacket's DecodingLayerParser, the fastest way gopacket offers
// (Otterize's mapper decodes with gopacket.NewPacket, slower still). It does the same work on the same file as
// `network-mapper --pcap-file … --no-syn-capture --print-metrics`: libpcap reads the file and applies the same
// filter, the parser decodes Ethernet, IPv4/IPv6, UDP/TCP and the DNS message (a TCP segment's message after its
// length prefix), then each response is checked for an answer, for a forwarded lookup (addressed to a DNS server)
// and, with -node, for a client on another node, de-duplicated (client, client port, id and question, 2 s), and
// resolved: the client pod's workload, the Service a cluster name names, or the address an outside name
// resolves to, else the outside name; the edge is counted in a map. It prints the outcome counts.
//
// Build and run (benches/dns_compare.sh does both): GO111MODULE=off GOPATH=/usr/share/gocode go build -o DIR/dlp
// benches/gopacket/main.go, then DIR/dlp -pcap cluster.pcap -cluster cluster.tsv [-node node-07].
// Needs Debian's golang-go, golang-github-google-gopacket-dev and libpcap-dev.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
)

const filter = "udp src port 53 or tcp src port 53"
const windowMicros = 2_000_000
const maxEntries = 65_536
const clusterDomain = ".svc.cluster.local"

type pod struct{ node, namespace, workload string }
type workload struct{ namespace, name string }

type cluster struct {
	pods       map[netip.Addr]pod
	services   map[netip.Addr]workload
	byName     map[string]workload // "name.namespace"
	dnsServers map[netip.Addr]bool
}

func load(path string) cluster {
	c := cluster{map[netip.Addr]pod{}, map[netip.Addr]workload{}, map[string]workload{}, map[netip.Addr]bool{}}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Split(lines.Text(), "\t")
		switch fields[0] {
		case "pod":
			c.pods[netip.MustParseAddr(fields[1])] = pod{fields[2], fields[3], fields[4]}
		case "service":
			w := workload{fields[2], fields[4]}
			c.services[netip.MustParseAddr(fields[3])] = w
			c.byName[fields[1]+"."+fields[2]] = w
		case "dns":
			c.dnsServers[netip.MustParseAddr(fields[1])] = true
		}
	}
	return c
}

type dedupKey struct {
	client netip.Addr
	port   uint16
	hash   uint64
}

type seen struct {
	at  int64
	key dedupKey
}

type edge struct{ clientNamespace, client, serverNamespace, server string }

type counts map[string]uint64

func main() {
	file := flag.String("pcap", "", "capture file")
	tsv := flag.String("cluster", "", "cluster.tsv from dns_mix_gen")
	node := flag.String("node", "", "count only clients on this node")
	flag.Parse()
	c := load(*tsv)
	handle, err := pcap.OpenOffline(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := handle.SetBPFFilter(filter); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	var eth layers.Ethernet
	var ip4 layers.IPv4
	var ip6 layers.IPv6
	var udp layers.UDP
	var tcp layers.TCP
	var dns layers.DNS
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &udp, &tcp, &dns)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)

	seed := maphash.MakeSeed()
	firstSeen := map[dedupKey]int64{}
	order := make([]seen, 0, maxEntries)
	edges := map[edge]uint64{}
	out := counts{}
	var h maphash.Hash
	h.SetSeed(seed)

	for {
		data, ci, err := handle.ZeroCopyReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		out["packets"]++
		at := ci.Timestamp.UnixMicro()
		_ = parser.DecodeLayers(data, &decoded)
		var src, dst netip.Addr
		var dstPort uint16
		haveDNS, haveTCP := false, false
		for _, layer := range decoded {
			switch layer {
			case layers.LayerTypeIPv4:
				src, _ = netip.AddrFromSlice(ip4.SrcIP.To4())
				dst, _ = netip.AddrFromSlice(ip4.DstIP.To4())
			case layers.LayerTypeIPv6:
				src, _ = netip.AddrFromSlice(ip6.SrcIP)
				dst, _ = netip.AddrFromSlice(ip6.DstIP)
			case layers.LayerTypeUDP:
				dstPort = uint16(udp.DstPort)
			case layers.LayerTypeTCP:
				dstPort = uint16(tcp.DstPort)
				haveTCP = true
			case layers.LayerTypeDNS:
				haveDNS = true
			}
		}
		if haveTCP {
			// DNS over TCP: the message follows a 2-byte length (one message per segment here).
			payload := tcp.Payload
			if len(payload) < 2 || dns.DecodeFromBytes(payload[2:], gopacket.NilDecodeFeedback) != nil {
				out["malformed"]++
				continue
			}
			haveDNS = true
		}
		if !haveDNS && !haveTCP && udp.SrcPort == 53 && dns.DecodeFromBytes(udp.Payload, gopacket.NilDecodeFeedback) == nil {
			// The parser picks the next layer by port, the destination's first: a client port that gopacket
			// knows (5353, 4789, 6081…) hides the DNS message from it.
			haveDNS = true
		}
		if !haveDNS {
			out["malformed"]++
			continue
		}
		if dns.QR && len(dns.Questions) > 0 {
			c.dnsServers[src] = true
		}
		if len(dns.Questions) == 0 {
			out["malformed"]++
			continue
		}
		if !dns.QR || dns.OpCode != 0 || dns.ResponseCode != 0 || dns.ANCount == 0 {
			out["not_answer"]++
			continue
		}
		if c.dnsServers[dst] {
			out["forwarded"]++
			continue
		}
		client, ok := c.pods[dst]
		if *node != "" && ok && client.node != *node {
			out["other_node"]++
			continue
		}
		q := dns.Questions[0]
		h.Reset()
		h.WriteByte(byte(dns.ID >> 8))
		h.WriteByte(byte(dns.ID))
		h.Write(q.Name)
		h.WriteByte(byte(q.Type >> 8))
		h.WriteByte(byte(q.Type))
		key := dedupKey{dst, dstPort, h.Sum64()}
		for len(order) > 0 && (order[0].at <= at-windowMicros || len(order) >= maxEntries) {
			if firstSeen[order[0].key] == order[0].at {
				delete(firstSeen, order[0].key)
			}
			order = order[1:]
		}
		if first, ok := firstSeen[key]; ok && at-first < windowMicros {
			out["duplicate"]++
			continue
		}
		firstSeen[key] = at
		order = append(order, seen{at, key})
		if !ok {
			out["unresolved"]++
			continue
		}
		name := strings.ToLower(string(q.Name))
		var server workload
		found := false
		if strings.HasSuffix(name, clusterDomain) {
			server, found = c.byName[strings.TrimSuffix(name, clusterDomain)]
		} else {
			for _, answer := range dns.Answers {
				if answer.Type != layers.DNSTypeA && answer.Type != layers.DNSTypeAAAA {
					continue
				}
				ip, _ := netip.AddrFromSlice(answer.IP)
				if w, ok := c.services[ip.Unmap()]; ok {
					server, found = w, true
					break
				}
				if p, ok := c.pods[ip.Unmap()]; ok {
					server, found = workload{p.namespace, p.workload}, true
					break
				}
			}
			if !found {
				server, found = workload{"", name}, true
			}
		}
		if !found {
			out["unresolved"]++
			continue
		}
		edges[edge{client.namespace, client.workload, server.namespace, server.name}]++
		out["counted"]++
	}
	for _, outcome := range []string{"packets", "counted", "duplicate", "not_answer", "forwarded", "other_node",
		"unresolved", "malformed"} {
		fmt.Printf("%s %d\n", outcome, out[outcome])
	}
	fmt.Printf("edges %d\n", len(edges))
}
