// Package flowstore keeps the server's flow records at rest. Store ingests
// batches exactly once by record identity into SQLite partitioned by day,
// with retention, queries, top talkers, edges and followers; FileWriter and
// VPCWriter export OCSF JSON lines and AWS VPC Flow Logs text, and
// Exporter copies the store into them behind a durable cursor.
//
// It is apart from package flow so that producers (agents, gateways) link
// the records, spool and shipper without SQLite.
package flowstore
