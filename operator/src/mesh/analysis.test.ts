import { describe, expect, it } from 'vitest';
import { addFigures, proberJourneysOf, requestFiguresOf } from './analysis.ts';
import { histogramQuantile } from './rollout.ts';

const exposition = [
  '# HELP meshwork_http_request_duration_seconds Time from a request...',
  '# TYPE meshwork_http_request_duration_seconds histogram',
  'meshwork_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/me",status="200"} 3',
  'meshwork_http_request_duration_seconds_sum{method="GET",route="/v1/me",status="200"} 0.1',
  'meshwork_http_request_duration_seconds_count{method="GET",route="/v1/me",status="200"} 90',
  'meshwork_http_request_duration_seconds_count{method="PUT",route="/v1/objects/{id}",status="503"} 7',
  'meshwork_http_request_duration_seconds_count{method="PUT",route="/v1/objects/{id}",status="500"} 3',
  'meshwork_http_request_duration_seconds_count{method="GET",route="/v1/changes",status="499"} 40',
  'meshwork_http_request_duration_seconds_count{method="GET",route="/v1/objects/{id}",status="404"} 5',
  'meshwork_http_requests_in_flight 2',
].join('\n');

describe('requestFiguresOf', () => {
  it.each([
    { case: 'a member that served requests', text: exposition, figures: { total: 105, errors: 10 } },
    {
      case: 'a member that served none yet',
      text: '# TYPE meshwork_http_request_duration_seconds histogram\n',
      figures: { total: 0, errors: 0 },
    },
    { case: 'text that is not an exposition', text: '<html>nope</html>', figures: { total: 0, errors: 0 } },
  ])('counts 5xx among requests, leaving out 499 ($case)', ({ text, figures }) => {
    expect(requestFiguresOf(text)).toMatchObject(figures);
  });

  it("leaves WebDAV's transfers out of the latency, not out of the requests and errors", () => {
    const text = [
      'meshwork_http_request_duration_seconds_count{method="GET",route="/v1/me",status="200"} 10',
      'meshwork_http_request_duration_seconds_bucket{le="1",method="GET",route="/v1/me",status="200"} 10',
      'meshwork_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/me",status="200"} 10',
      'meshwork_http_request_duration_seconds_count{method="PUT",route="/dav",status="503"} 5',
      'meshwork_http_request_duration_seconds_bucket{le="1",method="PUT",route="/dav",status="503"} 0',
      'meshwork_http_request_duration_seconds_bucket{le="+Inf",method="PUT",route="/dav",status="503"} 5',
    ].join('\n');
    expect(requestFiguresOf(text)).toEqual({ total: 15, errors: 5, latency: { bounds: [1, Infinity], counts: [10, 10] } });
  });

  it('sums the latency buckets of every route but long polls, leaving out 499', () => {
    const text = [
      'meshwork_http_request_duration_seconds_bucket{le="0.1",method="GET",route="/v1/me",status="200"} 8',
      'meshwork_http_request_duration_seconds_bucket{le="1",method="GET",route="/v1/me",status="200"} 9',
      'meshwork_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/me",status="200"} 10',
      'meshwork_http_request_duration_seconds_bucket{le="0.1",method="PUT",route="/v1/objects/:id/entries/*path",status="500"} 0',
      'meshwork_http_request_duration_seconds_bucket{le="1",method="PUT",route="/v1/objects/:id/entries/*path",status="500"} 2',
      'meshwork_http_request_duration_seconds_bucket{le="+Inf",method="PUT",route="/v1/objects/:id/entries/*path",status="500"} 2',
      'meshwork_http_request_duration_seconds_bucket{le="0.1",method="GET",route="/v1/notifications",status="200"} 0',
      'meshwork_http_request_duration_seconds_bucket{le="1",method="GET",route="/v1/notifications",status="200"} 0',
      'meshwork_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/notifications",status="200"} 50',
      'meshwork_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/me",status="499"} 30',
    ].join('\n');
    expect(requestFiguresOf(text).latency).toEqual({ bounds: [0.1, 1, Infinity], counts: [8, 11, 12] });
  });

  it('sums members, their latency bucket by bucket', () => {
    expect(addFigures({ total: 3, errors: 1 }, { total: 7, errors: 0 })).toEqual({ total: 10, errors: 1 });
    const a = { total: 4, errors: 0, latency: { bounds: [0.1, 1, Infinity], counts: [2, 3, 4] } };
    const b = { total: 6, errors: 0, latency: { bounds: [0.1, 0.5, Infinity], counts: [1, 5, 6] } };
    expect(addFigures(a, b).latency).toEqual({ bounds: [0.1, 0.5, 1, Infinity], counts: [3, 7, 8, 10] });
    expect(addFigures(a, { total: 1, errors: 1 }).latency).toEqual(a.latency);
  });
});

describe('proberJourneysOf', () => {
  it('reads the journeys by outcome, or nothing from text without both', () => {
    const text = [
      '# TYPE meshwork_prober_journeys_total counter',
      'meshwork_prober_journeys_total{outcome="ok"} 41',
      'meshwork_prober_journeys_total{outcome="error"} 2',
      'meshwork_prober_steps_total{step="create",outcome="ok"} 43',
    ].join('\n');
    expect(proberJourneysOf(text)).toEqual({ ok: 41, error: 2 });
    expect(proberJourneysOf('meshwork_prober_journeys_total{outcome="ok"} 41')).toBeUndefined();
    expect(proberJourneysOf('<html>nope</html>')).toBeUndefined();
  });
});

describe('histogramQuantile', () => {
  it.each([
    { case: 'inside the first bucket, from 0', q: 0.5, h: { bounds: [1, Infinity], counts: [10, 10] }, value: 0.5 },
    { case: 'interpolated in its bucket', q: 0.99, h: { bounds: [1, 5, 10, Infinity], counts: [190, 196, 200, 200] }, value: 7.5 },
    { case: 'in the +Inf bucket: the highest finite bound', q: 0.99, h: { bounds: [1, 5, Infinity], counts: [50, 60, 100] }, value: 5 },
    { case: 'an empty histogram', q: 0.99, h: { bounds: [1, Infinity], counts: [0, 0] }, value: undefined },
  ])('$case', ({ q, h, value }) => {
    expect(histogramQuantile(q, h)).toBe(value);
  });
});
