import { describe, expect, it } from 'vitest';
import { addFigures, requestFiguresOf } from './analysis.ts';

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
    expect(requestFiguresOf(text)).toEqual(figures);
  });

  it('sums members', () => {
    expect(addFigures({ total: 3, errors: 1 }, { total: 7, errors: 0 })).toEqual({ total: 10, errors: 1 });
  });
});
