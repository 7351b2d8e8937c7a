// The PouchDB column of bench_sync.py: replicate the same documents to pouchdb-server and back.
// usage: node pouch_bench.js DOCS.json http://127.0.0.1:PORT WORKDIR  -> prints {"push": s, "pull": s, "docs": n}
const fs = require("fs");
const path = require("path");
const PouchDB = require("pouchdb");

async function main() {
  const [docsFile, remote, workDir] = process.argv.slice(2);
  const docs = JSON.parse(fs.readFileSync(docsFile, "utf8"));
  const Local = PouchDB.defaults({ prefix: workDir + path.sep });
  const laptopA = new Local("laptop-a");
  for (let start = 0; start < docs.length; start += 1000) {
    await laptopA.bulkDocs(docs.slice(start, start + 1000));
  }
  let started = Date.now();
  await PouchDB.replicate(laptopA, `${remote}/issues`);
  const push = (Date.now() - started) / 1000;
  const laptopB = new Local("laptop-b");
  started = Date.now();
  await PouchDB.replicate(`${remote}/issues`, laptopB);
  const pull = (Date.now() - started) / 1000;
  const info = await laptopB.info();
  console.log(JSON.stringify({ push, pull, docs: info.doc_count }));
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
