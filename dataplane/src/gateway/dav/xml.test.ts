// WebDAV XML: namespaces resolved, dead property values kept as XML, DTDs and undeclared
// entities refused, multistatus and error bodies rendered.
import { describe, expect, it } from 'vitest';
import { DavXmlError, parseDavXml, parseLockinfo, parsePropfind, parseProppatch, renderError, renderMultistatus } from './xml.ts';

describe('parsing', () => {
  it('reads propfind forms', () => {
    expect(parsePropfind('')).toEqual({ kind: 'allprop', include: [] });
    expect(parsePropfind('<propfind xmlns="DAV:"><propname/></propfind>')).toEqual({ kind: 'propname' });
    expect(parsePropfind('<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><x:a xmlns:x="urn:x"/></D:prop></D:propfind>')).toEqual({
      kind: 'prop',
      props: [
        { ns: 'DAV:', name: 'getetag' },
        { ns: 'urn:x', name: 'a' },
      ],
    });
  });

  it('keeps a dead property value as XML with its namespaces declared', () => {
    const [update] = parseProppatch(
      '<D:propertyupdate xmlns:D="DAV:" xmlns:z="urn:z"><D:set><D:prop><z:p>a &amp; <z:b attr="1">c</z:b></z:p></D:prop></D:set></D:propertyupdate>',
    );
    expect(update).toEqual({ op: 'set', prop: { ns: 'urn:z', name: 'p' }, value: 'a &amp; <b xmlns="urn:z" attr="1">c</b>' });
  });

  it('reads a lockinfo', () => {
    expect(
      parseLockinfo(
        '<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype><owner><href>me</href></owner></lockinfo>',
      ),
    ).toEqual({ scope: 'shared', owner: '<href xmlns="DAV:">me</href>' });
  });

  it.each([
    ['a DTD', '<!DOCTYPE a [<!ENTITY x "y">]><a xmlns="DAV:">&x;</a>'],
    ['an undeclared entity', '<a xmlns="DAV:">&x;</a>'],
    ['an undeclared prefix', '<q:a/>'],
    ['an empty prefixed namespace', '<a xmlns="DAV:"><b:c xmlns:b=""/></a>'],
    ['broken XML', '<a xmlns="DAV:"><b></a>'],
  ])('refuses %s', (_what, text) => {
    expect(() => parseDavXml(text)).toThrow(DavXmlError);
  });

  it('refuses bodies of the wrong element', () => {
    expect(() => parsePropfind('<propertyupdate xmlns="DAV:"/>')).toThrow(DavXmlError);
    expect(() =>
      parseLockinfo('<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><read/></locktype></lockinfo>'),
    ).toThrow(DavXmlError);
  });
});

describe('rendering', () => {
  it('renders a multistatus with escaped hrefs and foreign namespaces', () => {
    const xml = renderMultistatus([
      {
        href: '/dav/a&b',
        propstats: [
          {
            status: 200,
            props: [
              { prop: { ns: 'DAV:', name: 'getetag' }, xml: '"1"' },
              { prop: { ns: 'urn:x', name: 'p' }, xml: 'v' },
            ],
          },
          { status: 404, props: [{ prop: { ns: '', name: 'q' }, xml: undefined }] },
        ],
      },
    ]);
    expect(xml).toContain('<d:href>/dav/a&amp;b</d:href>');
    expect(xml).toContain('<d:getetag>"1"</d:getetag><x:p xmlns:x="urn:x">v</x:p>');
    expect(xml).toContain('<q xmlns=""/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status>');
    expect(() => parseDavXml(xml)).not.toThrow();
  });

  it('renders an error with its condition', () => {
    expect(renderError('propfind-finite-depth', 'no <infinity>')).toContain(
      '<d:propfind-finite-depth/><mw:message>no &lt;infinity&gt;</mw:message>',
    );
  });
});
