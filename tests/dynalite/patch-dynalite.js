// Run by `npm ci` (postinstall). dynalite 4.0.0 names an item inside an index by the index key
// plus the first 24 bits of an MD5 of the item's table key (db/index.js, createIndexKey), so two
// items of one index key whose table keys share those bits take one index entry: the later write
// replaces the earlier one, and no query through the index finds the earlier item again. Among a
// thousand sessions of one user that happens about once in thirty-five runs; on DynamoDB, never.
// This appends the item's full table key, so every item has an entry of its own; the order of
// an index, and every cursor through it (query.js and scan.js build theirs with the same
// function), stay as they were. Fails loudly when the line is not found.
'use strict'
const fs = require('fs')
const path = require('path')

const file = path.join(__dirname, 'node_modules', 'dynalite', 'db', 'index.js')
const before = '  return createKey(item, table, keySchema) + hashPrefix.apply(this, tableKeyPieces)\n'
const after = '  return createKey(item, table, keySchema) + hashPrefix.apply(this, tableKeyPieces) + \'/\' + createKey(item, table)\n'

const source = fs.readFileSync(file, 'utf8')
if (source.includes(after)) {
  process.exit(0)
}
if (!source.includes(before)) {
  console.error(`patch-dynalite.js: createIndexKey in ${file} is not the one this patch knows (dynalite other than 4.0.0?); the patch was not applied`)
  process.exit(1)
}
fs.writeFileSync(file, source.replace(before, after))
console.error('patch-dynalite.js: every index entry now carries its item\'s full table key')
