// Original file: proto/sluice/v1/operations.proto

import type { MethodDefinition } from '@grpc/proto-loader'
import type { FlushConnectionsRequest as _sluice_v1_FlushConnectionsRequest, FlushConnectionsRequest__Output as _sluice_v1_FlushConnectionsRequest__Output } from '../../sluice/v1/FlushConnectionsRequest.js';
import type { FlushConnectionsResponse as _sluice_v1_FlushConnectionsResponse, FlushConnectionsResponse__Output as _sluice_v1_FlushConnectionsResponse__Output } from '../../sluice/v1/FlushConnectionsResponse.js';
import type { GetStatsRequest as _sluice_v1_GetStatsRequest, GetStatsRequest__Output as _sluice_v1_GetStatsRequest__Output } from '../../sluice/v1/GetStatsRequest.js';
import type { GetStatsResponse as _sluice_v1_GetStatsResponse, GetStatsResponse__Output as _sluice_v1_GetStatsResponse__Output } from '../../sluice/v1/GetStatsResponse.js';
import type { ListConnectionsRequest as _sluice_v1_ListConnectionsRequest, ListConnectionsRequest__Output as _sluice_v1_ListConnectionsRequest__Output } from '../../sluice/v1/ListConnectionsRequest.js';
import type { ListConnectionsResponse as _sluice_v1_ListConnectionsResponse, ListConnectionsResponse__Output as _sluice_v1_ListConnectionsResponse__Output } from '../../sluice/v1/ListConnectionsResponse.js';
import type { LookupFlowRequest as _sluice_v1_LookupFlowRequest, LookupFlowRequest__Output as _sluice_v1_LookupFlowRequest__Output } from '../../sluice/v1/LookupFlowRequest.js';
import type { LookupFlowResponse as _sluice_v1_LookupFlowResponse, LookupFlowResponse__Output as _sluice_v1_LookupFlowResponse__Output } from '../../sluice/v1/LookupFlowResponse.js';

export interface OperationsDefinition {
  FlushConnections: MethodDefinition<_sluice_v1_FlushConnectionsRequest, _sluice_v1_FlushConnectionsResponse, _sluice_v1_FlushConnectionsRequest__Output, _sluice_v1_FlushConnectionsResponse__Output>
  GetStats: MethodDefinition<_sluice_v1_GetStatsRequest, _sluice_v1_GetStatsResponse, _sluice_v1_GetStatsRequest__Output, _sluice_v1_GetStatsResponse__Output>
  ListConnections: MethodDefinition<_sluice_v1_ListConnectionsRequest, _sluice_v1_ListConnectionsResponse, _sluice_v1_ListConnectionsRequest__Output, _sluice_v1_ListConnectionsResponse__Output>
  LookupFlow: MethodDefinition<_sluice_v1_LookupFlowRequest, _sluice_v1_LookupFlowResponse, _sluice_v1_LookupFlowRequest__Output, _sluice_v1_LookupFlowResponse__Output>
}
